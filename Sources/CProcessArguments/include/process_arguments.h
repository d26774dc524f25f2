/* The process's argv as glibc hands it to ELF constructors. Swift's
 * CommandLine.arguments is found at run time by reading /proc/self/maps; when
 * that read fails (EIO, EACCES, an exhausted fd table) it is silently EMPTY,
 * and a command line parsed from nothing is a cleaning run with every default
 * (measured: `--dry-run` deleted leases). These never fail. */
#ifndef VSC_PROCESS_ARGUMENTS_H
#define VSC_PROCESS_ARGUMENTS_H

/* argc as the process was started with, or 0 if the constructor did not run. */
int vsc_argument_count(void);

/* argv[index] for 0 <= index < vsc_argument_count(); NULL otherwise. */
const char *vsc_argument(int index);

#endif
