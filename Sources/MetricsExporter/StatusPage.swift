// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSModel
import JSONValues
import PathEvents

/// What the status page shows, taken on the server's event loop: every channel path with its
/// states and what its loss would cost, the devices in use that run on one path or none, the
/// recent path changes. `json` is `GET /status.json`; `html` is `GET /status`, the same data as
/// a page that reads without scripts and, with them, loads `/status.json` again every two
/// seconds (plain DOM calls, no framework, nothing fetched from elsewhere).
struct StatusSnapshot {
    struct Path {
        var chpid: String
        var type: String
        var vary: String
        var configure: String
        var condition: String
        var subchannels: Int
        var redundancy: RedundancySummary?
    }

    struct Device {
        var subchannel: String
        var device: String
        var operational: Int
        var installed: Int
    }

    struct Change {
        var sequence: UInt64
        var time: EventTime
        var chpid: String
        var change: String
        var subchannels: Int
    }

    var version: String
    var backend: String
    var epoch: String
    var newest: UInt64
    var paths: [Path] = []
    var devices: [Device] = []
    /// Whether more devices than `devices` run on one path or none.
    var moreDevices = false
    var changes: [Change] = []
    var totals = (singlePath: 0, redundancyLost: 0, withoutPath: 0)
    /// Subchannels the device list walked (for tests: 0 when no device is degraded).
    private(set) var subchannelsScanned = 0

    /// Most devices listed; the totals count them all.
    static let deviceLimit = 64
    /// Most recent path changes listed.
    static let changeLimit = 20

    /// Reads the model and the journal. O(chpids) for the paths (the redundancy counts are
    /// kept by the model); for the device list nothing when no device in use is on fewer than
    /// two paths, else up to the last of them (at most `deviceLimit` + 1), O(subchannels) at
    /// worst; O(`changeLimit`) for the journal.
    init(
        version: String, backend: String, subsystem: Subsystem, cssids: [UInt8], journal: PathEventJournal
    ) {
        self.version = version
        self.backend = backend
        epoch = journal.epoch
        newest = journal.newest
        for (index, path) in subsystem.channelPaths.enumerated() {
            paths.append(
                Path(
                    chpid: path.id.description, type: Hex.string(Int(path.type), width: 2),
                    vary: path.vary.description, configure: path.configure.description,
                    condition: path.condition.description, subchannels: subsystem.subchannels(using: path.id).count,
                    redundancy: subsystem.redundancy(ofPathAt: index)))
        }
        for cssid in cssids {
            let summary = subsystem.redundancy(cssid: cssid)
            totals.singlePath += summary.singlePath
            totals.redundancyLost += summary.redundancyLost
            totals.withoutPath += summary.withoutPath
        }
        // The devices listed are exactly those the model's redundancy counts count (in use, on
        // one operational path or none): with none counted there is nothing to look for, and
        // the walk stops once it found them all (or one more than it lists). So a healthy
        // machine's page costs O(chpids), not O(subchannels), every time it is polled.
        let wanted = totals.singlePath + totals.withoutPath
        for subchannel in subsystem.subchannels {
            guard devices.count < wanted else { break }
            subchannelsScanned += 1
            let paths = subchannel.operationalPaths
            guard paths.inUse, paths.count <= 1 else { continue }
            guard devices.count < Self.deviceLimit else {
                moreDevices = true
                break
            }
            devices.append(
                Device(
                    subchannel: subchannel.id.description, device: subchannel.deviceID?.description ?? "",
                    operational: paths.count, installed: subchannel.channelPaths.compactMap { $0 }.count))
        }
        for entry in journal.changes.suffix(Self.changeLimit).reversed() {
            changes.append(
                Change(
                    sequence: entry.sequence, time: entry.time, chpid: entry.change.chpid.description,
                    change: entry.kind.rawValue, subchannels: entry.change.affected.count))
        }
    }

    var json: JSON {
        .object([
            ("cssd", .string(version)), ("backend", .string(backend)), ("epoch", .string(epoch)),
            ("newest", .integer(Int(newest))),
            (
                "totals",
                .object([
                    ("single-path", .integer(totals.singlePath)), ("redundancy-lost", .integer(totals.redundancyLost)),
                    ("without-path", .integer(totals.withoutPath)),
                ])
            ),
            (
                "chpids",
                .array(
                    paths.map { path in
                        .object([
                            ("chpid", .string(path.chpid)), ("type", .string(path.type)), ("vary", .string(path.vary)),
                            ("configure", .string(path.configure)), ("condition", .string(path.condition)),
                            ("subchannels", .integer(path.subchannels)),
                            ("single-path", .integer(path.redundancy?.singlePath ?? 0)),
                            ("without-path", .integer(path.redundancy?.withoutPath ?? 0)),
                        ])
                    })
            ),
            (
                "devices",
                .array(
                    devices.map { device in
                        .object([
                            ("subchannel", .string(device.subchannel)), ("device", .string(device.device)),
                            ("paths", .integer(device.operational)), ("installed", .integer(device.installed)),
                        ])
                    })
            ),
            ("more-devices", .bool(moreDevices)),
            (
                "changes",
                .array(
                    changes.map { change in
                        .object([
                            ("sequence", .integer(Int(change.sequence))), ("time", .string(Self.time(change.time))),
                            ("chpid", .string(change.chpid)), ("change", .string(change.change)),
                            ("subchannels", .integer(change.subchannels)),
                        ])
                    })
            ),
        ])
    }

    /// `2026-12-07T16:20:01Z` (UTC, whole seconds).
    static func time(_ time: EventTime) -> String {
        var seconds = time.seconds
        let second = seconds % 60
        seconds /= 60
        let minute = seconds % 60
        seconds /= 60
        let hour = seconds % 24
        // Days since 1970-01-01 to a civil date (Howard Hinnant's days_from_civil inverse).
        let z = seconds / 24 + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        let year = yoe + era * 400 + (month <= 2 ? 1 : 0)
        func two(_ n: Int) -> String { n < 10 ? "0\(n)" : "\(n)" }
        return "\(year)-\(two(month))-\(two(day))T\(two(hour)):\(two(minute)):\(two(second))Z"
    }

    /// The page: the snapshot rendered, and the script that renders the next ones.
    var html: String {
        var rows = ""
        for path in paths {
            let lost = (path.redundancy?.singlePath ?? 0) + (path.redundancy?.withoutPath ?? 0)
            let bad = path.vary != "online" || path.configure != "configured" || path.condition != "operational"
            rows += "<tr class=\"\(bad ? "bad" : lost > 0 ? "warn" : "ok")\">"
            for cell in [
                path.chpid, path.type, path.vary, path.configure, path.condition, "\(path.subchannels)",
                "\(path.redundancy?.singlePath ?? 0)", "\(path.redundancy?.withoutPath ?? 0)",
            ] {
                rows += "<td>\(Self.escaped(cell))</td>"
            }
            rows += "</tr>\n"
        }
        var deviceRows = ""
        for device in devices {
            deviceRows += "<tr class=\"\(device.operational == 0 ? "bad" : "warn")\">"
            for cell in [device.subchannel, device.device, "\(device.operational)", "\(device.installed)"] {
                deviceRows += "<td>\(Self.escaped(cell))</td>"
            }
            deviceRows += "</tr>\n"
        }
        var changeRows = ""
        for change in changes {
            changeRows += "<tr>"
            for cell in [
                "\(change.sequence)", Self.time(change.time), change.chpid, change.change, "\(change.subchannels)",
            ] {
                changeRows += "<td>\(Self.escaped(cell))</td>"
            }
            changeRows += "</tr>\n"
        }
        return Self.template
            .replacing("{{version}}", with: Self.escaped(version))
            .replacing("{{backend}}", with: Self.escaped(backend))
            .replacing("{{newest}}", with: "\(newest)")
            .replacing("{{single}}", with: "\(totals.singlePath)")
            .replacing("{{lost}}", with: "\(totals.redundancyLost)")
            .replacing("{{without}}", with: "\(totals.withoutPath)")
            .replacing("{{chpids}}", with: rows)
            .replacing("{{devices}}", with: deviceRows)
            .replacing("{{changes}}", with: changeRows)
    }

    /// Text for HTML: `& < > " '` as references.
    static func escaped(_ text: String) -> String {
        var out = ""
        for character in text {
            switch character {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.append(character)
            }
        }
        return out
    }

    /// The page around the rows. The script rebuilds the tables from /status.json with
    /// textContent (nothing the server sends is parsed as HTML) and says when it lost the server.
    static let template = """
        <!DOCTYPE html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>cssd: channel paths</title>
        <style>
        body { font-family: sans-serif; margin: 1.5em; color: #222; }
        table { border-collapse: collapse; margin-bottom: 1.5em; }
        th, td { border: 1px solid #bbb; padding: 0.2em 0.6em; text-align: left; }
        th { background: #eee; }
        tr.bad td { background: #f8d0d0; }
        tr.warn td { background: #fbeec8; }
        .totals span { margin-right: 1.5em; }
        #state { color: #666; }
        </style>
        </head>
        <body>
        <h1>cssd: channel paths</h1>
        <p id="state">cssd {{version}}, backend {{backend}}, path change {{newest}}</p>
        <p class="totals"><span>Devices in use on one path: <b id="single">{{single}}</b></span>
        <span>of which lost their redundancy: <b id="lost">{{lost}}</b></span>
        <span>without any path: <b id="without">{{without}}</b></span></p>
        <h2>Channel paths</h2>
        <table><thead><tr><th>CHPID</th><th>Type</th><th>Vary</th><th>Configure</th><th>Condition</th>
        <th>Subchannels</th><th>Devices on it alone</th><th>Devices without a path</th></tr></thead>
        <tbody id="chpids">
        {{chpids}}</tbody></table>
        <h2>Devices in use on one path or none</h2>
        <table><thead><tr><th>Subchannel</th><th>Device</th><th>Paths</th><th>Installed</th></tr></thead>
        <tbody id="devices">
        {{devices}}</tbody></table>
        <h2>Recent path changes</h2>
        <table><thead><tr><th>Sequence</th><th>Time</th><th>CHPID</th><th>Change</th><th>Subchannels</th></tr></thead>
        <tbody id="changes">
        {{changes}}</tbody></table>
        <script>
        "use strict";
        function fill(id, rows, cells, rowClass) {
          const body = document.getElementById(id);
          const fresh = document.createElement("tbody");
          fresh.id = id;
          for (const row of rows) {
            const tr = document.createElement("tr");
            if (rowClass) tr.className = rowClass(row);
            for (const cell of cells(row)) {
              const td = document.createElement("td");
              td.textContent = String(cell);
              tr.appendChild(td);
            }
            fresh.appendChild(tr);
          }
          body.replaceWith(fresh);
        }
        function pathClass(p) {
          if (p.vary !== "online" || p.configure !== "configured" || p.condition !== "operational") return "bad";
          return p["single-path"] + p["without-path"] > 0 ? "warn" : "ok";
        }
        async function refresh() {
          try {
            const reply = await fetch("status.json", { cache: "no-store" });
            if (!reply.ok) throw new Error(reply.status + " " + reply.statusText);
            const s = await reply.json();
            document.getElementById("state").textContent =
              "cssd " + s.cssd + ", backend " + s.backend + ", path change " + s.newest +
              ", updated " + new Date().toLocaleTimeString();
            document.getElementById("single").textContent = s.totals["single-path"];
            document.getElementById("lost").textContent = s.totals["redundancy-lost"];
            document.getElementById("without").textContent = s.totals["without-path"];
            fill("chpids", s.chpids, p => [p.chpid, p.type, p.vary, p.configure, p.condition, p.subchannels,
                                           p["single-path"], p["without-path"]], pathClass);
            fill("devices", s.devices, d => [d.subchannel, d.device, d.paths, d.installed],
                 d => d.paths === 0 ? "bad" : "warn");
            fill("changes", s.changes, c => [c.sequence, c.time, c.chpid, c.change, c.subchannels]);
          } catch (error) {
            document.getElementById("state").textContent = "cssd is not answering (" + error.message + ")";
          }
        }
        setInterval(refresh, 2000);
        </script>
        </body>
        </html>

        """

    /// `GET /`: what the endpoint serves.
    static let landing = """
        <!DOCTYPE html>
        <html lang="en">
        <head><meta charset="utf-8"><title>cssd</title></head>
        <body>
        <h1>cssd</h1>
        <p>QMP control server for the s390 channel subsystem.</p>
        <ul>
        <li><a href="status">Status</a>: channel paths, devices on one path or none, recent path changes</li>
        <li><a href="status.json">status.json</a>: the same as JSON</li>
        <li><a href="metrics">Metrics</a> for Prometheus</li>
        </ul>
        </body>
        </html>

        """
}
