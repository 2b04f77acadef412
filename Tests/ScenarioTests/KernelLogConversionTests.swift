// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

import CSSModel
import Testing

@testable import Scenario

@Suite struct KernelLogConversionTests {
    /// A switch failure as a host logged it (dmesg, then /dev/kmsg records), with lines the
    /// model cannot replay.
    static let log = """
        [  100.000000] crw_info : CRW reports slct=0, oflw=0, chn=0, rsc=4, anc=0, erc=6, rsid=40
        [  100.000200] crw_info : CRW reports slct=0, oflw=0, chn=0, rsc=4, anc=0, erc=6, rsid=41
        [  100.000900] crw_info : CRW reports slct=0, oflw=0, chn=0, rsc=3, anc=0, erc=4, rsid=1
        [  100.500000] cio: Link degraded: RS=04 RSID=0042 IC=00 IUPARAMS=00 IUNODE=00 IUPARAMS=00
        [  101.250000] dasd-eckd 0.0.4711: Path 0.43 (pathmask 10) is disabled - IFCC threshold exceeded
        [  101.300000] dasd-eckd 0.0.4711: No operational channel path is left for the device
        6,2001,101400000,-;cio: Link stopped: RS=04 RSID=0042 IC=00 IUPARAMS=00
        6,2002,102000000,-;crw_info : CRW reports slct=0, oflw=0, chn=1, rsc=4, anc=0, erc=2, rsid=40
        6,2003,102000010,-;crw_info : CRW reports slct=0, oflw=0, chn=0, rsc=4, anc=0, erc=0, rsid=100
        6,2004,103000000,-;cio: Processing deconfigure for channel path 0.41
        6,2005,104000000,-;crw_info : CRW reports slct=0, oflw=1, chn=0, rsc=4, anc=0, erc=6, rsid=40
        kernel: something unrelated
        """

    @Test func aKernelLogBecomesAScenarioAtItsOffsets() throws {
        let result = KernelLogConversion.convert(Self.log, name: "host-incident")
        let scenario = try Scenario.parse(result.text)
        #expect(scenario.name == "host-incident")
        #expect(result.steps == 6)
        #expect(scenario.steps.map(\.name) == ["kmsg-1", "kmsg-2", "kmsg-5", "kmsg-7", "kmsg-8", "kmsg-10"])
        #expect(scenario.steps.map(\.offset) == [0, 0, 1250, 1400, 2000, 3000])
        let chp = { (text: String) in try! ChannelPathID(parsing: text) }
        #expect(
            scenario.steps.map(\.action) == [
                .pathFault(chpids: [chp("0.40")], fault: .permanentError),
                .pathFault(chpids: [chp("0.41")], fault: .permanentError),
                .devicePathFault(device: try DeviceID(parsing: "0.0.4711"), chpid: chp("0.43"), fault: .permanentError),
                .pathFault(chpids: [chp("0.42")], fault: .temporaryError),
                // Chained: the second word's rsid 0x100 is cssid 1.
                .pathFault(chpids: [chp("1.40")], fault: .recovered),
                .configure(chpid: chp("0.41"), state: .standby, force: true),
            ])
        #expect(result.skipped.map(\.line) == [3, 4, 6, 11])
        #expect(result.skipped[0].reason.contains("rsc 3"))
    }

    /// Hostile times are no times (a negative TIME_US trapped on overflow); a time beyond a
    /// scenario's range skips its line with the reason; an rsid over a byte is named as such.
    @Test func hostileTimesAndIdsAreSkippedWithTheirReason() throws {
        let log = """
            6,1,5,-;crw_info : CRW reports slct=0, oflw=0, chn=0, rsc=4, anc=0, erc=6, rsid=40
            6,2,-9223372036854775808,-;crw_info : CRW reports slct=0, oflw=0, chn=0, rsc=4, anc=0, erc=6, rsid=41
            [9223372036854.775807] crw_info : CRW reports slct=0, oflw=0, chn=0, rsc=4, anc=0, erc=6, rsid=42
            6,3,9223372036854775807,-;crw_info : CRW reports slct=0, oflw=0, chn=0, rsc=4, anc=0, erc=6, rsid=43
            6,4,6000,-;crw_info : CRW reports slct=0, oflw=0, chn=0, rsc=4, anc=0, erc=6, rsid=100
            """
        let result = KernelLogConversion.convert(log, name: "hostile")
        let scenario = try Scenario.parse(result.text)
        #expect(scenario.steps.map(\.name) == ["kmsg-1", "kmsg-2"])
        #expect(scenario.steps.map(\.offset) == [0, 0])
        #expect(result.skipped.map(\.line) == [3, 4, 5])
        #expect(result.skipped[0].reason.hasSuffix("ms after the first line's, beyond a scenario's range"))
        #expect(result.skipped[1].reason.hasSuffix("ms after the first line's, beyond a scenario's range"))
        #expect(result.skipped[2].reason == "a channel-path report with rsid 100: a chpid is one byte")
    }

    @Test func anEmptyLogIsAnEmptyScenario() throws {
        let result = KernelLogConversion.convert("", name: "nothing")
        #expect(result.steps == 0)
        #expect(try Scenario.parse(result.text).steps.isEmpty)
    }
}
