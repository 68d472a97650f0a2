// System calls that Swift's Glibc module does not export (glibc declares them only under
// _GNU_SOURCE), wrapped as plain C functions.

#ifndef MANET_SYSTEM_CALLS_H
#define MANET_SYSTEM_CALLS_H

/// syncfs(2): writes the cached data and metadata of the filesystem holding `fd` to disk.
/// Returns 0, or -1 with errno set; since Linux 5.8 a write-back error of that filesystem is
/// reported here too.
int manet_syncfs(int fd);

#endif
