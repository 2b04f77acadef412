// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.
//
// libFuzzer target over framing + parsing + dispatch: one QMPSession fed the input in
// chunks, with every reply line checked. Build and run with Scripts/fuzz.sh. Built normally
// (without -DFUZZING) it is a replay tool: `qmp-fuzz FILE...` runs the same checks on files,
// which is how Tests/ replays inputs that once failed.

import QMPFuzzSupport

#if canImport(Glibc)
import Glibc
#endif

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTestOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    FuzzHarness.runOne(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}

#if FUZZING
/// libFuzzer's entry point when the program supplies its own main.
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
    _ callback: @convention(c) (UnsafePointer<UInt8>, Int) -> CInt
) -> CInt
#endif

@main
struct QMPFuzzMain {
    static func main() {
        #if FUZZING
        warmUp()
        var argc = CommandLine.argc
        var argv = CommandLine.unsafeArgv
        exit(LLVMFuzzerRunDriver(&argc, &argv) { fuzzTestOneInput($0, $1) })
        #else
        replay(Array(CommandLine.arguments.dropFirst()))
        #endif
    }

    /// Builds the server state and its lazily computed replies (introspection, version) before
    /// fuzzing, so that LeakSanitizer does not count these one-time allocations against an input.
    static func warmUp() {
        let queries =
            "{\"execute\":\"query-version\"}{\"execute\":\"query-commands\"}{\"execute\":\"query-qmp-schema\"}"
        for control: UInt8 in [0x82, 0x83] {
            let input = [control] + Array(queries.utf8)
            input.withUnsafeBytes { FuzzHarness.runOne($0) }
        }
    }

    static func replay(_ paths: [String]) {
        guard !paths.isEmpty else {
            print("usage: qmp-fuzz FILE...   (replays inputs through the fuzz checks)")
            exit(2)
        }
        for path in paths {
            guard let file = fopen(path, "rb") else {
                print("cannot open \(path)")
                exit(2)
            }
            var bytes: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 65536)
            while true {
                let n = fread(&buffer, 1, buffer.count, file)
                if n <= 0 { break }
                bytes.append(contentsOf: buffer[0..<n])
            }
            fclose(file)
            bytes.withUnsafeBytes { FuzzHarness.runOne($0) }
        }
        print("replayed \(paths.count) inputs: ok")
    }
}
