/* The version vm-fork reports (CLI and API). */
#ifndef CORE_VERSION_H
#define CORE_VERSION_H

#define VMFORK_VERSION "0.2.0"

#endif
