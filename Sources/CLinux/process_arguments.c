#include "CLinux.h"

#include <stddef.h>

static int saved_count;
static char **saved_values;

/* glibc calls the functions of .init_array with (argc, argv, envp) before
 * main(), from the process's own stack: no file is read. */
__attribute__((constructor)) static void vsc_capture_arguments(int argc, char **argv, char **envp)
{
    (void)envp;
    if (argc > 0 && argv != NULL) {
        saved_count = argc;
        saved_values = argv;
    }
}

int vsc_argument_count(void)
{
    return saved_count;
}

const char *vsc_argument(int index)
{
    if (index < 0 || index >= saved_count)
        return NULL;
    return saved_values[index];
}
