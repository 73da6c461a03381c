// SPDX-License-Identifier: MIT
// The program's own CPUID under `kvmsharp exec`: leaf 0x8000001F (AMD's memory-encryption leaf, which QEMU's sev.c
// reads for the C-bit position) before and after the first open of /dev/kvm, from the main thread and from a thread
// created afterwards, and leaf 0 (the vendor) — which stays this machine's.
#include <cpuid.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void print_leaf(const char *when, unsigned leaf)
{
    unsigned a, b, c, d;
    __cpuid_count(leaf, 0, a, b, c, d);
    printf("%s %#x: %#x %#x %#x %#x\n", when, leaf, a, b, c, d);
}

static void *in_thread(void *arg)
{
    (void)arg;
    print_leaf("thread", 0x8000001f);
    return NULL;
}

int main(void)
{
    print_leaf("before", 0x8000001f);
    int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (kvm < 0) {
        perror("open /dev/kvm");
        return 1;
    }
    print_leaf("after", 0x8000001f);
    pthread_t t;
    pthread_create(&t, NULL, in_thread, NULL);
    pthread_join(t, NULL);
    unsigned a, b, c, d;
    char vendor[13] = {0};
    __cpuid(0, a, b, c, d);
    memcpy(vendor, &b, 4);
    memcpy(vendor + 4, &d, 4);
    memcpy(vendor + 8, &c, 4);
    printf("vendor %s max %#x\n", vendor, a);
    close(kvm);
    return 0;
}
