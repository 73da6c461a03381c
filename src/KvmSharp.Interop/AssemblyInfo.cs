// SPDX-License-Identifier: MIT
using System.Runtime.CompilerServices;

// Every struct that crosses the kernel boundary must be blittable: no hidden marshalling may change a kernel-ABI layout.
[assembly: DisableRuntimeMarshalling]
