// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import QMPWire

/// qmp_capabilities, query-version, query-commands, query-qmp-schema, quit (API/qmp.json): one
/// static method per command, as the generated `CoreCommandsSchema` requires.
enum CoreCommands {
    static func qmpCapabilities(_ arguments: QMPCapabilitiesArguments, _ context: CommandContext) throws(QMPError)
        -> CommandOutcome
    {
        guard !context.session.isNegotiated else {
            throw QMPError(.commandNotFound, "Capabilities negotiation is already complete, command ignored")
        }
        // The schema admits only known capabilities, and the server offers all of them.
        context.session.enterCommandMode(oob: arguments.enable?.contains(.oob) ?? false)
        return .reply(.emptyObject())
    }

    static func queryVersion(_ context: CommandContext) throws(QMPError) -> CommandOutcome {
        .reply(context.server.versionInfo)
    }

    static func queryCommands(_ context: CommandContext) throws(QMPError) -> CommandOutcome {
        .reply(context.server.commandList(readOnly: context.session.isReadOnly))
    }

    static func queryQMPSchema(_ context: CommandContext) throws(QMPError) -> CommandOutcome {
        .reply(context.server.introspection(readOnly: context.session.isReadOnly))
    }

    static func quit(_ context: CommandContext) throws(QMPError) -> CommandOutcome {
        context.server.quitRequested = true
        context.server.onShutdownRequest?(.hostQMPQuit)
        return .reply(.emptyObject())
    }
}
