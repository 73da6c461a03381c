// SPDX-License-Identifier: MIT
// Memory a process mapped without this kernel, used directly by vCPUs (kvmsharp exec).
namespace KvmSharp.Emulation;

public sealed partial class EmulatedKernel
{
    /// <summary>
    /// Lets vCPUs use [<paramref name="address"/>, +<paramref name="length"/>) directly, as memory mapped through
    /// <see cref="Mmap"/> is: for a program that mapped its guest memory itself (kvmsharp exec), where otherwise every
    /// guest access would be a process_vm_readv/writev. The caller vouches that the whole range is mapped with
    /// <paramref name="prot"/> now, and must call <see cref="ForgetProcessMemory"/> before the program unmaps,
    /// remaps or reprotects any of it (KVM's MMU notifier has the same duty in the kernel).
    /// </summary>
    public void AdoptProcessMemory(nint address, ulong length, int prot)
    {
        if (length == 0) return;
        lock (SyncRoot)
        {
            bool write = (prot & Kernel.LinuxConstants.PROT_WRITE) != 0;
            // A mapping of this kernel's own files (a guest_memfd) keeps its own rules: never used directly.
            nint end = address + (nint)PageAlign(length);
            if (_disposed || _mm.Vmas.Any(v => v.Start < end && address < v.End)) return;
            if (!_anonymous.Covers(address, length, write)) _anonymous.Add(address, PageAlign(length), prot);
        }
    }

    /// <summary>
    /// The program is about to unmap, remap or reprotect [<paramref name="address"/>, +<paramref name="length"/>):
    /// vCPUs stop using it directly (every VM's cached translations dropped, running instructions waited for).
    /// </summary>
    public void ForgetProcessMemory(nint address, ulong length)
    {
        if (length != 0 && (address & (EmulatorConfig.PageSize - 1)) == 0) ForgetAnonymous(address, PageAlign(length));
    }
}
