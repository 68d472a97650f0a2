// libFuzzer entry points for the torch.save (.pth) loader; the body is `FuzzTargets.pth` in the main package.

import FuzzTargets
import Glibc

@_cdecl("LLVMFuzzerInitialize")
public func fuzzInitialize(_ argc: UnsafeMutablePointer<Int32>?, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>?) -> Int32 {
    FuzzTarget.pth.writeGeneratedSeeds(to: getenv("MANET_FUZZ_SEEDS").map { String(cString: $0) })
    return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    FuzzTargets.pth(data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? [])
    return 0
}
