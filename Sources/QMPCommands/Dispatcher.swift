// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CJansson
import QMPSchema
import QMPWire

#if canImport(Glibc)
import Glibc
#endif

/// Executes one parsed request: QEMU 7.2's qmp_dispatch, step for step, so that every
/// malformed request gets the error QEMU gives it.
public enum Dispatcher {
    /// - Parameters:
    ///   - request: the parsed JSON value (any type).
    ///   - allowOOB: whether the connection enabled the oob capability.
    /// - Returns: the command's return value, or the error to reply with.
    public static func dispatch(
        _ request: JSON, server: ServerState, session: SessionControl, allowOOB: Bool
    ) -> Result<JSON, QMPError> {
        guard request.isObject else { return .failure(.generic("QMP input must be a JSON object")) }
        let command: UnsafeMutablePointer<json_t>
        let oob: Bool
        switch checkEnvelope(request.raw, allowOOB: allowOOB) {
        case .success(let found): (command, oob) = found
        case .failure(let error): return .failure(error)
        }
        let name = JSON(borrowing: command).stringValue!
        let result = run(name, oob: oob, request: request, server: server, session: session)
        // During negotiation QEMU replaces the text of any CommandNotFound with a hint.
        if !session.isNegotiated, case .failure(let error) = result, error.errorClass == .commandNotFound {
            return .failure(QMPError(.commandNotFound, "Expecting capabilities negotiation with 'qmp_capabilities'"))
        }
        return result
    }

    private static func run(
        _ name: String, oob: Bool, request: JSON, server: ServerState, session: SessionControl
    ) -> Result<JSON, QMPError> {
        guard let entry = server.entries[name], session.isNegotiated || entry.command.negotiation else {
            return .failure(QMPError(.commandNotFound, "The command \(name) has not been found"))
        }
        if oob && !entry.command.allowOOB {
            return .failure(.generic("The command \(name) does not support OOB"))
        }
        if session.isReadOnly && !entry.command.isReadOnly {
            return .failure(
                QMPError(.commandNotFound, "The command \(name) is not allowed on a read-only connection (only query-* commands are)"))
        }
        // No arguments and none declared: share one empty object (nothing will be filled in).
        let arguments =
            request["arguments"] ?? (entry.command.arguments.isEmpty ? server.emptyArguments : .emptyObject())
        do {
            try server.validator.validate(arguments: arguments, members: entry.command.arguments)
        } catch {
            return .failure(.generic(error.desc))
        }
        do {
            return .success(try entry.handler(Arguments(arguments), CommandContext(server: server, session: session)))
        } catch {
            return .failure(error)
        }
    }

    /// qmp_dispatch_check_obj: the request's members.
    /// - Returns: the string naming the command, and whether it came as exec-oob.
    ///
    /// QEMU visits members in its hash table's order, which decides the error when several
    /// members are wrong; the valid case (by far the common one) needs no ordering at all.
    /// Keys are compared with their lengths: jansson keys may contain NUL (`\u0000`).
    static func checkEnvelope(
        _ object: UnsafeMutablePointer<json_t>, allowOOB: Bool
    ) -> Result<(UnsafeMutablePointer<json_t>, Bool), QMPError> {
        // Fast path: one pass over the keys, no allocation.
        var command: UnsafeMutablePointer<json_t>?
        var oob = false
        var clean = true
        var iter = json_object_iter(object)
        while let current = iter, clean {
            let value = json_object_iter_value(current)!
            switch EnvelopeKey(current, allowOOB: allowOOB) {
            case .execute, .execOOB:
                clean = value.pointee.type == JSON_STRING && command == nil
                command = value
                oob = EnvelopeKey(current, allowOOB: allowOOB) == .execOOB
            case .arguments:
                clean = value.pointee.type == JSON_OBJECT
            case .id:
                break
            case .other:
                clean = false
            }
            iter = json_object_iter_next(object, current)
        }
        if clean, let command { return .success((command, oob)) }

        // Something is wrong: find the error QEMU reports, in its member order.
        var members: [(key: String, kind: EnvelopeKey, value: UnsafeMutablePointer<json_t>)] = []
        iter = json_object_iter(object)
        while let current = iter {
            let key = JSON.iteratorKey(current)
            members.append((key, EnvelopeKey(current, allowOOB: allowOOB), json_object_iter_value(current)!))
            iter = json_object_iter_next(object, current)
        }
        let order = QDictOrder.iterationOrder(members.map(\.key))
        var position: [String: Int] = [:]
        for (index, key) in order.enumerated() { position[key] = index }
        members.sort { position[$0.key]! < position[$1.key]! }
        var previous: String?
        for member in members {
            switch member.kind {
            case .execute, .execOOB:
                guard member.value.pointee.type == JSON_STRING else {
                    return .failure(.generic("QMP input member '\(member.key)' must be a string"))
                }
                if let previous {
                    return .failure(.generic("QMP input member '\(member.key)' clashes with '\(previous)'"))
                }
                previous = member.key
                command = member.value
                oob = member.kind == .execOOB
            case .arguments:
                guard member.value.pointee.type == JSON_OBJECT else {
                    return .failure(.generic("QMP input member 'arguments' must be an object"))
                }
            case .id:
                continue
            case .other:
                return .failure(.generic("QMP input member '\(member.key)' is unexpected"))
            }
        }
        guard let command else { return .failure(.generic("QMP input lacks member 'execute'")) }
        return .success((command, oob))
    }

    /// The members a request may have. `exec-oob` counts only once oob is enabled.
    private enum EnvelopeKey: Equatable {
        case execute, execOOB, arguments, id, other

        init(_ iter: UnsafeMutableRawPointer, allowOOB: Bool) {
            let key = json_object_iter_key(iter)!
            let length = json_object_iter_key_len(iter)
            func matches(_ name: StaticString) -> Bool {
                length == name.utf8CodeUnitCount && memcmp(key, name.utf8Start, length) == 0
            }
            if matches("execute") {
                self = .execute
            } else if allowOOB && matches("exec-oob") {
                self = .execOOB
            } else if matches("arguments") {
                self = .arguments
            } else if matches("id") {
                self = .id
            } else {
                self = .other
            }
        }
    }
}
