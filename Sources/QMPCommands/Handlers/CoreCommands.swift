// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import QMPWire

/// qmp_capabilities, query-version, query-commands, query-qmp-schema, quit (API/qmp.json).
enum CoreCommands {
    static func register(into registry: inout CommandRegistry) {
        registry.register("qmp_capabilities") { (arguments, context) throws(QMPError) in
            guard !context.session.isNegotiated else {
                throw QMPError(.commandNotFound, "Capabilities negotiation is already complete, command ignored")
            }
            // The schema admits only known capabilities, and the server offers all of them.
            let enable = arguments.strings("enable") ?? []
            context.session.enterCommandMode(oob: enable.contains("oob"))
            return .emptyObject()
        }
        registry.register("query-version") { (_, context) throws(QMPError) in
            context.server.versionInfo
        }
        registry.register("query-commands") { (_, context) throws(QMPError) in
            context.server.commandList(readOnly: context.session.isReadOnly)
        }
        registry.register("query-qmp-schema") { (_, context) throws(QMPError) in
            context.server.introspection(readOnly: context.session.isReadOnly)
        }
        registry.register("quit") { (_, context) throws(QMPError) in
            context.server.onShutdownRequest?(.hostQMPQuit)
            return .emptyObject()
        }
    }
}
