// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import JSONValues

#if canImport(Glibc)
import Glibc
#endif

/// The `id` a reply echoes: the request's own value, or none (the request was not an object,
/// had no `id`, or was no JSON at all). Holds the request, so echoing costs no copy.
package struct QMPReplyID {
    /// Owns `node` (the whole request, or the id itself).
    let owner: JSON?
    let node: JSONNode?

    /// No `id` member: the reply has none either.
    package static var none: QMPReplyID { QMPReplyID(owner: nil, node: nil) }

    init(owner: JSON?, node: JSONNode?) {
        self.owner = node == nil ? nil : owner
        self.node = node
    }

    /// Echoes `value` (nil: no `id` member).
    package init(_ value: JSON?) { self.init(owner: value, node: value?.unownedNode) }

    /// The id's value, or nil when there is none.
    package var value: JSON? { node.map { JSON(retaining: $0) } }
}

/// A QMP request whose envelope passed QEMU's check (qmp_dispatch_check_obj in
/// qapi/qmp-dispatch.c, QEMU 7.2): an object with a string `execute` (or `exec-oob`, once oob
/// is enabled), optionally an object `arguments` and an `id` of any type, nothing else.
/// Arguments are not checked here: that is the schema's job.
package struct QMPRequest {
    /// The command's name, as sent (NUL bytes included).
    package let command: String
    /// Sent as `exec-oob`.
    package let isOOB: Bool
    /// The whole request, which owns the members below.
    package let message: JSON
    let argumentsNode: JSONNode?
    let idNode: JSONNode?

    /// The `arguments` object, or nil when the request has none.
    package var arguments: JSON? { argumentsNode.map { JSON(retaining: $0) } }

    /// What the reply echoes as `id`.
    package var replyID: QMPReplyID { QMPReplyID(owner: message, node: idNode) }

    /// The `id` member, or nil.
    package var id: JSON? { replyID.value }

    /// A request refused before dispatch: QEMU's GenericError text, and the `id` the error
    /// reply echoes (QEMU echoes it whenever the request is an object that has one).
    package struct Rejection: Error {
        package let desc: String
        package let replyID: QMPReplyID
    }

    /// Checks a parsed value's envelope, as QEMU does before looking the command up.
    ///
    /// When several members are wrong, the error is the one QEMU reports: it visits members
    /// in its QDict's hash order (`QDictOrder`), which the slow path replays; the valid case
    /// (by far the common one) is one pass over the keys with no allocation.
    /// - Parameters:
    ///   - value: any JSON value the framing produced.
    ///   - oobEnabled: whether the connection enabled the `oob` capability (`exec-oob` is an
    ///     unexpected member otherwise).
    /// - Returns: the request, or the rejection with QEMU's text: `QMP input must be a JSON
    ///   object`, `QMP input member 'K' must be a string`, `... clashes with ...`,
    ///   `QMP input member 'arguments' must be an object`, `QMP input member 'K' is unexpected`,
    ///   `QMP input lacks member 'execute'`.
    package static func check(_ value: JSON, oobEnabled: Bool) -> Result<QMPRequest, Rejection> {
        let object = value.unownedNode
        guard object.kind == .object else {
            return .failure(Rejection(desc: "QMP input must be a JSON object", replyID: .none))
        }
        let id = object[key: "id"]
        func reject(_ desc: String) -> Result<QMPRequest, Rejection> {
            .failure(Rejection(desc: desc, replyID: QMPReplyID(owner: value, node: id)))
        }
        // Fast path: one pass over the keys, no allocation.
        var command: JSONNode?
        var arguments: JSONNode?
        var oob = false
        var clean = true
        object.forEachMember { key, member in
            guard clean else { return }
            let kind = EnvelopeKey(key, oobEnabled: oobEnabled)
            switch kind {
            case .execute, .execOOB:
                clean = member.kind == .string && command == nil
                command = member
                oob = kind == .execOOB
            case .arguments:
                clean = member.kind == .object
                arguments = member
            case .id:
                break
            case .other:
                clean = false
            }
        }
        if clean, let command {
            return .success(
                QMPRequest(
                    command: command.stringValue!, isOOB: oob, message: value, argumentsNode: arguments,
                    idNode: id))
        }

        // Something is wrong: find the error QEMU reports, in its member order.
        var members: [(key: String, kind: EnvelopeKey, value: JSONNode)] = []
        object.forEachMember { key, member in
            members.append((String(decoding: key, as: UTF8.self), EnvelopeKey(key, oobEnabled: oobEnabled), member))
        }
        let order = QDictOrder.iterationOrder(members.map(\.key))
        var position: [String: Int] = [:]
        for (index, key) in order.enumerated() { position[key] = index }
        members.sort { position[$0.key]! < position[$1.key]! }
        var previous: String?
        command = nil
        arguments = nil
        for member in members {
            switch member.kind {
            case .execute, .execOOB:
                guard member.value.kind == .string else {
                    return reject("QMP input member '\(member.key)' must be a string")
                }
                if let previous {
                    return reject("QMP input member '\(member.key)' clashes with '\(previous)'")
                }
                previous = member.key
                command = member.value
                oob = member.kind == .execOOB
            case .arguments:
                guard member.value.kind == .object else {
                    return reject("QMP input member 'arguments' must be an object")
                }
                arguments = member.value
            case .id:
                continue
            case .other:
                return reject("QMP input member '\(member.key)' is unexpected")
            }
        }
        guard let command else { return reject("QMP input lacks member 'execute'") }
        return .success(
            QMPRequest(
                command: command.stringValue!, isOOB: oob, message: value, argumentsNode: arguments, idNode: id))
    }

    /// The members a request may have. `exec-oob` counts only once oob is enabled. Keys are
    /// compared with their lengths: jansson keys may contain NUL (`\u0000`).
    private enum EnvelopeKey: Equatable {
        case execute, execOOB, arguments, id, other

        @inline(__always)
        init(_ key: UnsafeBufferPointer<UInt8>, oobEnabled: Bool) {
            func matches(_ name: StaticString) -> Bool {
                key.count == name.utf8CodeUnitCount && memcmp(key.baseAddress!, name.utf8Start, key.count) == 0
            }
            if matches("execute") {
                self = .execute
            } else if oobEnabled && matches("exec-oob") {
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
