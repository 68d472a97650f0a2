// The machine's physical memory: the bound beyond which an output shape chosen by input data is
// refused instead of handed to the allocator (which would abort the process).

import Glibc

enum PhysicalMemory {
    static let bytes: Int = {
        let pages = sysconf(Int32(_SC_PHYS_PAGES))
        let size = sysconf(Int32(_SC_PAGESIZE))
        guard pages > 0, size > 0 else { return Int.max }
        let (b, overflow) = pages.multipliedReportingOverflow(by: size)
        return overflow ? Int.max : b
    }()
}
