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
        let execKey: String
        switch checkEnvelope(request.raw, allowOOB: allowOOB) {
        case .success(let key): execKey = key
        case .failure(let error): return .failure(error)
        }
        let name = String(cString: json_string_value(json_object_get(request.raw, execKey))!)
        let result = run(name, oob: execKey == "exec-oob", request: request, server: server, session: session)
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
        let arguments = request["arguments"] ?? .emptyObject()
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

    /// qmp_dispatch_check_obj: the request's members. Returns the key naming the command.
    ///
    /// QEMU visits members in its hash table's order, which decides the error when several
    /// members are wrong; the valid case (by far the common one) needs no ordering at all.
    static func checkEnvelope(_ object: UnsafeMutablePointer<json_t>, allowOOB: Bool) -> Result<String, QMPError> {
        var keys: [String] = []
        var execKey: String?
        var clean = true
        var iter = json_object_iter(object)
        while let current = iter {
            let key = String(cString: json_object_iter_key(current))
            let value = json_object_iter_value(current)!
            switch key {
            case _ where key == "execute" || (key == "exec-oob" && allowOOB):
                if value.pointee.type != JSON_STRING || execKey != nil { clean = false }
                execKey = key
            case "arguments":
                if value.pointee.type != JSON_OBJECT { clean = false }
            case "id":
                break
            default:
                clean = false
            }
            keys.append(key)
            iter = json_object_iter_next(object, current)
        }
        if clean, let execKey { return .success(execKey) }
        execKey = nil
        for key in QDictOrder.iterationOrder(keys) {
            let value = json_object_get(object, key)!
            switch key {
            case _ where key == "execute" || (key == "exec-oob" && allowOOB):
                guard value.pointee.type == JSON_STRING else {
                    return .failure(.generic("QMP input member '\(key)' must be a string"))
                }
                if let previous = execKey {
                    return .failure(.generic("QMP input member '\(key)' clashes with '\(previous)'"))
                }
                execKey = key
            case "arguments":
                guard value.pointee.type == JSON_OBJECT else {
                    return .failure(.generic("QMP input member 'arguments' must be an object"))
                }
            case "id":
                continue
            default:
                return .failure(.generic("QMP input member '\(key)' is unexpected"))
            }
        }
        guard let execKey else { return .failure(.generic("QMP input lacks member 'execute'")) }
        return .success(execKey)
    }
}
