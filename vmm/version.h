/* The version vm-fork reports (CLI and API). */
#ifndef VMM_VERSION_H
#define VMM_VERSION_H

#define VMFORK_VERSION "0.2.0"

#endif
