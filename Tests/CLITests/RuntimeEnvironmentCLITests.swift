// The command line's runtime switches (environment variables mapped onto `RuntimeOptions` in one
// place): a value that does not parse is a usage error naming the variable; a valid one runs.

import Foundation
import TestSupport
import XCTest

final class RuntimeEnvironmentCLITests: XCTestCase {
    func bench(_ environment: [String]) throws -> ProcessResult {
        try runProcess("/usr/bin/env", environment + [manetBinary, "bench", "--train", "--width", "4", "--input-size", "64",
                                                      "--batch", "1", "--iterations", "1", "--warmup", "0", "--threads", "1"])
    }

    func testBadValuesAreUsageErrors() throws {
        for (variable, value) in [("MANET_CONV", "fast"), ("MANET_KERNELS", "sse9"), ("MANET_SPLIT", "rows"),
                                  ("MANET_WINO_CB", "-8"), ("MANET_PACKED", "no"), ("MANET_GEMM", "mkl"),
                                  ("MANET_WINO_BAND", "wide"), ("MANET_FUSE_GATES", "off")] {
            let result = try bench(["\(variable)=\(value)"])
            XCTAssertEqual(result.status, 64, result.stderr)
            XCTAssertTrue(result.stderr.contains("\(variable)=\(value)"), result.stderr)
        }
    }

    /// OpenBLAS forced to its SSE3 fallback: the general GEMMs go to our kernels, with a warning.
    func testOpenBLASFallbackIsAvoided() throws {
        let result = try runProcess("/usr/bin/env", ["OPENBLAS_CORETYPE=Prescott", manetBinary, "bench", "--train", "--width", "4",
                                                     "--input-size", "64", "--batch-size", "1", "--iterations", "1",
                                                     "--warmup", "0", "--threads", "1", "--json"])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(result.stdout.contains("\"openblas_core\":\"Prescott\""), result.stdout)
        XCTAssertFalse(result.stdout.contains("\"kernels\":\"openblas\""), result.stdout)
        XCTAssertTrue(result.stderr.contains("manet: warning: OpenBLAS runs its Prescott kernels"), result.stderr)
    }

    func testValidValuesRun() throws {
        let result = try bench(["MANET_CONV=direct", "MANET_KERNELS=portable", "MANET_IMPLICIT=0", "MANET_SPLIT=blocks",
                                "MANET_WINO_CB=0", "MANET_WINOGRAD_KEEP=0", "MANET_MIN_TILES=1", "MANET_BRANCHES=0",
                                "MANET_GEMM=own", "MANET_WINO_BAND=0", "MANET_FUSE_GATES=0"])
        XCTAssertEqual(result.status, 0, result.stderr)
    }
}
