// SPDX-License-Identifier: MIT

// KVM tests may run side by side (each micro-VM is independent), but this machine has two cores and a timeout test
// measures wall-clock time: keep it to two at once. The fd-leak checks run alone (see FdLeakTests).
[assembly: CollectionBehavior(MaxParallelThreads = 2)]
