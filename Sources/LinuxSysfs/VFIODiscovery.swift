// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSBackend
import CSSModel
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Reads vfio-ccw passthrough on a Linux host (API/linux-sysfs.md, "vfio-ccw passthrough"):
/// which subchannels are bound to `vfio_ccw`, their mediated devices, and the guest holding
/// each one.
///
/// What it reads, and what it costs per reading:
/// - per candidate subchannel (one without a ccw device: binding to vfio_ccw removes the ccw
///   device child, so a subchannel with one cannot be bound to it), its `driver` link: one
///   readlink;
/// - per bound subchannel, its directory's listing (the `<uuid>` child), `driver_override`,
///   `available_instances`, and per mdev `/sys/bus/mdev/devices/<uuid>` (lstat) and
///   `iommu_group` (readlink): five or six system calls;
/// - the guests: the `*.xml` status files of `RUN/libvirt/qemu/`, parsed again only when one's
///   size or modification time changed; `/proc` is scanned (every process's `fd/` links) only
///   for mdevs with an IOMMU group that no libvirt file names.
/// When each is read again is `VFIOWatch`'s business; this type reads and attributes.
struct VFIODiscovery {
    let paths: SysfsPaths
    /// The directory that stands for `/run` (`--run-root`).
    let runRoot: String
    /// The directory that stands for `/proc` (`--proc-root`).
    let procRoot: String
    /// Parsed libvirt status files by path, with the size and time they were parsed at.
    private var statusFiles: [String: (stamp: FileStamp, status: LibvirtDomainStatus?)] = [:]

    init(paths: SysfsPaths, runRoot: String = "/run", procRoot: String = "/proc") {
        self.paths = paths
        self.runRoot = runRoot
        self.procRoot = procRoot
    }

    /// One subchannel: nil unless its `driver` link names `vfio_ccw` (a dangling or missing
    /// link is not bound, as for lscss).
    func readSubchannel(_ id: SubchannelID) -> HostPassthrough? {
        let dir = paths.subchannel(id)
        guard SysfsFiles.linkBasename(dir + "/driver") == "vfio_ccw" else { return nil }
        var sch = HostPassthrough(subchannel: id)
        // drivers/base/bus.c driver_override_show prints "(null)" when it is unset.
        if let text = (try? SysfsFiles.line(dir + "/driver_override")).flatMap({ $0 }), text != "(null)",
            !text.isEmpty
        {
            sch.driverOverride = text
        }
        sch.availableInstances = (try? SysfsFiles.line(dir + "/mdev_supported_types/vfio_ccw-io/available_instances"))
            .flatMap { $0 }.flatMap { Int($0) }
        // lscss.c fill_vfio_devid: the first entry in alphasort order that matches the UUID form.
        let names = ((try? SysfsFiles.entries(dir)) ?? nil) ?? []
        if let uuid = names.filter(Self.isUUID).sorted().first {
            let mdevDir = dir + "/" + uuid
            var registered = stat()
            let active = lstat(paths.root + "/bus/mdev/devices/" + uuid, &registered) == 0
            let group = SysfsFiles.linkBasename(mdevDir + "/iommu_group").flatMap { Int($0) }
            sch.mdev = MediatedDevice(
                uuid: uuid, state: active ? .active : .removalPending, iommuGroup: group,
                holder: group == nil
                    ? .unknown(reason: "\(mdevDir) has no iommu_group link: no process can be found holding it")
                    : .none)
        }
        return sch
    }

    /// `8-4-4-4-12` hex digits (lscss.c UUID_FORMAT).
    static func isUUID(_ name: String) -> Bool {
        let parts = name.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.map(\.count) == [8, 4, 4, 4, 12] else { return false }
        return parts.allSatisfy { $0.allSatisfy(\.isHexDigit) }
    }

    /// The running domains by the UUIDs of their mdev hostdevs.
    static func domainsByUUID(_ statuses: [LibvirtDomainStatus]) -> [String: LibvirtDomainStatus] {
        var byUUID: [String: LibvirtDomainStatus] = [:]
        for status in statuses {
            for uuid in status.mdevs { byUUID[uuid] = status }
        }
        return byUUID
    }

    /// The IOMMU groups of the mdevs no libvirt status file names: what `/proc` is scanned for.
    static func unattributedGroups(_ bound: some Collection<HostPassthrough>, _ byUUID: [String: LibvirtDomainStatus])
        -> Set<Int>
    {
        var groups = Set<Int>()
        for sch in bound {
            guard let mdev = sch.mdev, byUUID[mdev.uuid] == nil, let group = mdev.iommuGroup else { continue }
            groups.insert(group)
        }
        return groups
    }

    /// Sets each mdev's holder from the status files (`byUUID`) and a `/proc` scan; pure.
    /// - Parameter unreadable: libvirt status files that could not be read or parsed (too
    ///   large, not XML): one of them may name an mdev nobody is seen holding, so such an mdev
    ///   is unknown, not free.
    static func attribute(
        _ bound: inout [HostPassthrough], byUUID: [String: LibvirtDomainStatus], scan: ProcessScan?,
        unreadable: [String] = []
    ) {
        for index in bound.indices {
            guard let mdev = bound[index].mdev else { continue }
            if let status = byUUID[mdev.uuid] {
                bound[index].mdev!.holder = .libvirt(domain: status.name, pid: status.pid)
            } else if let group = mdev.iommuGroup, let scan {
                if let holder = scan.holders[group] {
                    bound[index].mdev!.holder = holder
                } else if let reason = scan.blind {
                    bound[index].mdev!.holder = .unknown(reason: reason)
                } else if let file = unreadable.first {
                    let more = unreadable.count > 1 ? " (and \(unreadable.count - 1) more)" : ""
                    bound[index].mdev!.holder = .unknown(
                        reason: "no process holds its group, but libvirt status file \(file)\(more) could not be read")
                }
            }
        }
    }

    /// The status files the last `readLibvirtStatus` could not read or parse, in path order.
    var unreadableStatusFiles: [String] { statusFiles.keys.sorted().filter { statusFiles[$0]!.status == nil } }

    /// The running domains' status files, parsed (cached by size and modification time).
    mutating func readLibvirtStatus() -> [LibvirtDomainStatus] {
        let dir = runRoot + "/libvirt/qemu"
        let names = ((try? SysfsFiles.entries(dir)) ?? nil)?.filter { $0.hasSuffix(".xml") } ?? []
        var seen: [String: (stamp: FileStamp, status: LibvirtDomainStatus?)] = [:]
        for name in names {
            let path = dir + "/" + name
            guard let stamp = FileStamp(path) else { continue }
            if let cached = statusFiles[path], cached.stamp == stamp {
                seen[path] = cached
            } else {
                seen[path] = (stamp, wholeFile(path).flatMap(LibvirtDomainStatus.init(parsing:)))
            }
        }
        statusFiles = seen
        return seen.keys.sorted().compactMap { seen[$0]!.status }
    }
}

/// The whole of a regular file of up to `limit` bytes (nil: missing, unreadable, not a regular
/// file, or longer). `SysfsFiles.read` stops at a page, which is right for an attribute but cuts
/// a libvirt status file (tens of KiB), a QEMU command line or `/proc/mounts` short.
func wholeFile(_ path: String, limit: Int = 1 << 20) -> String? {
    let fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 16384)
    while bytes.count <= limit {
        let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress!, $0.count) }
        if n < 0 {
            if errno == EINTR { continue }
            return nil
        }
        if n == 0 { return String(decoding: bytes, as: UTF8.self) }
        bytes += chunk[..<n]
    }
    return nil
}

/// A file's size and modification time, to tell whether it was rewritten.
struct FileStamp: Equatable {
    let size: Int
    let seconds: Int
    let nanoseconds: Int

    init?(_ path: String) {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        size = Int(info.st_size)
        seconds = Int(info.st_mtim.tv_sec)
        nanoseconds = Int(info.st_mtim.tv_nsec)
    }
}

/// What cssd takes from libvirt's status file of a running QEMU domain
/// (`/run/libvirt/qemu/<domain>.xml`, written by qemuDomainObjPrivateXMLFormat: a
/// `<domstatus state=… pid=…>` element around the live `<domain>` definition): the domain's
/// name, its QEMU's pid and the UUIDs of its mdev hostdevs (`<hostdev mode='subsystem'
/// type='mdev' model='vfio-ccw'><source><address uuid='…'/></source></hostdev>`).
///
/// The file is libvirt's own, written by libvirt in one form; cssd looks for these few
/// elements rather than parse XML in general (no XML library is linked, and the static build
/// would need libxml2 for one).
struct LibvirtDomainStatus: Equatable {
    var name: String
    var pid: Int?
    var mdevs: [String]

    /// nil when the text has no `<domain>` with a `<name>`.
    init?(parsing text: String) {
        let all = text[...]
        guard let domain = all.firstRange(of: "<domain"),
            let nameOpen = all[domain.upperBound...].firstRange(of: "<name>"),
            let nameClose = all[nameOpen.upperBound...].firstRange(of: "</name>")
        else { return nil }
        name = Self.unescape(String(all[nameOpen.upperBound..<nameClose.lowerBound]))
        let head = all[..<domain.lowerBound]
        pid = head.firstRange(of: "<domstatus").flatMap { start in
            Self.attribute("pid", in: head[start.upperBound...].prefix { $0 != ">" }).flatMap { Int($0) }
        }
        mdevs = []
        var rest = all[domain.upperBound...]
        while let open = rest.firstRange(of: "<hostdev") {
            let element = rest[open.upperBound...]
            let end = element.firstRange(of: "</hostdev>")?.lowerBound ?? rest.endIndex
            let body = rest[open.upperBound..<end]
            if Self.attribute("type", in: body.prefix { $0 != ">" }) == "mdev",
                let address = body.firstRange(of: "<address"),
                let uuid = Self.attribute("uuid", in: body[address.upperBound...].prefix { $0 != ">" })
            {
                mdevs.append(uuid.lowercased())
            }
            rest = rest[end...]
        }
    }

    /// `name='value'` or `name="value"` in a tag's text.
    static func attribute(_ name: String, in tag: Substring) -> String? {
        for quote in ["'", "\""] {
            if let start = tag.firstRange(of: " " + name + "=" + quote),
                let end = tag[start.upperBound...].firstIndex(of: Character(quote))
            {
                return unescape(String(tag[start.upperBound..<end]))
            }
        }
        return nil
    }

    /// The five predefined XML entities and numeric character references (`&#10;`, `&#x41;`),
    /// in one pass (a domain name may hold `&`, `<`, `'`; libvirt writes a control character as
    /// a reference). A reference that names no character is left as written.
    static func unescape(_ text: String) -> String {
        guard text.contains("&") else { return text }
        let named: [Substring: Character] = ["lt": "<", "gt": ">", "quot": "\"", "apos": "'", "amp": "&"]
        var out = ""
        var rest = text[...]
        while let amp = rest.firstIndex(of: "&") {
            out += rest[..<amp]
            let after = rest[rest.index(after: amp)...]
            if let semicolon = after.prefix(12).firstIndex(of: ";") {
                let name = after[..<semicolon]
                var decoded: Character?
                if let character = named[name] {
                    decoded = character
                } else if name.hasPrefix("#x") || name.hasPrefix("#X") {
                    decoded = UInt32(name.dropFirst(2), radix: 16).flatMap(Unicode.Scalar.init).map(Character.init)
                } else if name.hasPrefix("#") {
                    decoded = UInt32(name.dropFirst(), radix: 10).flatMap(Unicode.Scalar.init).map(Character.init)
                }
                if let decoded {
                    out.append(decoded)
                    rest = after[after.index(after: semicolon)...]
                    continue
                }
            }
            out.append("&")
            rest = after
        }
        return out + rest
    }
}

/// The processes that hold `/dev/vfio/<group>` open, from `/proc/<pid>/fd` links.
struct ProcessScan {
    /// Per group: its holder (the first process found, in pid order).
    var holders: [Int: GuestHolder] = [:]
    /// Set when some processes could not be looked at (hidden by `hidepid`, unreadable `fd/`):
    /// a group nobody was seen holding is then unknown, for this reason, not free.
    var blind: String?

    static func holders(of groups: Set<Int>, procRoot: String) -> ProcessScan {
        var scan = ProcessScan()
        let wanted = Dictionary(uniqueKeysWithValues: groups.map { ("/dev/vfio/\($0)", $0) })
        // systemd's ProtectProc=invisible mounts procfs with hidepid=invisible (hidepid=2 in
        // older notation): other users' processes have no /proc entry at all.
        if Self.procHidesOthers(procRoot) {
            scan.blind =
                "procfs hides other users' processes (hidepid=invisible, as systemd's ProtectProc=invisible mounts "
                + "it): the holder cannot be seen; a libvirt status file would name it"
        }
        let pids = (((try? SysfsFiles.entries(procRoot)) ?? nil) ?? []).compactMap { Int($0) }.sorted()
        var unreadable = 0
        for pid in pids {
            let fdDir = "\(procRoot)/\(pid)/fd"
            let fds: [String]
            do throws(BackendError) {
                // A process that exited meanwhile has no directory any more: nil, nothing held.
                guard let names = try SysfsFiles.entries(fdDir) else { continue }
                fds = names
            } catch {
                unreadable += 1
                continue
            }
            for fd in fds {
                guard let target = Self.link(fdDir + "/" + fd), let group = wanted[target],
                    scan.holders[group] == nil
                else { continue }
                scan.holders[group] = .process(guest: Self.guestName(pid: pid, procRoot: procRoot), pid: pid)
            }
        }
        if unreadable > 0, scan.blind == nil {
            scan.blind =
                "\(unreadable) process(es)' fd/ under \(procRoot) could not be read (another user's, without "
                + "CAP_SYS_PTRACE): the holder may be among them"
        }
        return scan
    }

    /// Whether `PROC/mounts` shows the procfs at `/proc` mounted with `hidepid=invisible` (or
    /// its older spelling `hidepid=2`).
    static func procHidesOthers(_ procRoot: String) -> Bool {
        guard let text = wholeFile(procRoot + "/mounts") else { return false }
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: " ")
            guard fields.count > 3, fields[1] == "/proc", fields[2] == "proc" else { continue }
            let options = fields[3].split(separator: ",")
            return options.contains("hidepid=invisible") || options.contains("hidepid=2")
        }
        return false
    }

    /// The whole target of a symbolic link; nil when it is not one or is gone.
    static func link(_ path: String) -> String? {
        var buffer = [CChar](repeating: 0, count: 4096)
        let count = readlink(path, &buffer, buffer.count - 1)
        guard count > 0 else { return nil }
        return String(decoding: buffer[..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// QEMU's `-name guest=NAME,...` or `-name NAME` (libvirt passes the first); nil without
    /// one or when `cmdline` cannot be read (`comm` would be cut to 15 characters).
    static func guestName(pid: Int, procRoot: String) -> String? {
        guard let text = wholeFile("\(procRoot)/\(pid)/cmdline") else { return nil }
        return guestName(arguments: text.split(separator: "\0", omittingEmptySubsequences: false).map(String.init))
    }

    static func guestName(arguments: [String]) -> String? {
        guard let index = arguments.firstIndex(where: { $0 == "-name" || $0 == "--name" }),
            index + 1 < arguments.count
        else { return nil }
        // QEMU option syntax: the implied key is `guest`; `,,` escapes a comma in a value.
        var fields: [String] = []
        var current = ""
        var chars = Array(arguments[index + 1])[...]
        while let c = chars.popFirst() {
            if c == "," {
                if chars.first == "," {
                    current.append(",")
                    chars.removeFirst()
                } else {
                    fields.append(current)
                    current = ""
                }
            } else {
                current.append(c)
            }
        }
        fields.append(current)
        for (position, field) in fields.enumerated() {
            // An empty name is none (a `guest=""` series would read as no label at all).
            if field.hasPrefix("guest=") { return field.count > 6 ? String(field.dropFirst(6)) : nil }
            if position == 0, !field.contains("=") { return field.isEmpty ? nil : field }
        }
        return nil
    }
}
