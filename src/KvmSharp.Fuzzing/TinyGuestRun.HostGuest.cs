// SPDX-License-Identifier: MIT
using System.Text;
using KvmSharp.Abi;
using KvmSharp.Kernel;
using KvmSharp.Memory;

namespace KvmSharp.Fuzzing;

/// <summary>
/// The common start of the runs in anonymous host memory (IDT, IRQ chip, guest debug, LDT, real-mode IVT, x86 state
/// runs): the memory, slot 0 at GPA 0 over all of it, vCPU 0 with its kvm_run mapping, and the final registers' text.
/// </summary>
internal static partial class TinyGuestRun
{
    /// <summary>The memory, vCPU and kvm_run mapping of a started host-memory guest; disposed in the reverse order.</summary>
    private sealed record HostGuest(MappedRegion Memory, KernelFd Vcpu, MappedRegion Run) : IDisposable
    {
        public void Dispose()
        {
            Run.Dispose();
            Vcpu.Dispose();
            Memory.Dispose();
        }
    }

    /// <summary>
    /// <see cref="StartHostGuest"/> for the 64-bit layout: <see cref="WriteLongModeTables"/>, then <paramref name="tables"/>
    /// (an IDT, an LDT…), then <paramref name="code"/> at <see cref="CodeGpa"/>.
    /// </summary>
    private static string? StartLongModeGuest(IKernel kernel, KernelFd system, KernelFd vm, byte[] code, Action<MappedRegion>? tables, out HostGuest? guest) =>
        StartHostGuest(kernel, system, vm, LongSlotSize, m =>
        {
            WriteLongModeTables(m);
            tables?.Invoke(m);
            code.CopyTo(m.GetSpan(CodeGpa, code.Length));
        }, out guest);

    /// <summary>
    /// <paramref name="size"/> bytes of anonymous memory that <paramref name="fill"/> writes, slot 0 at GPA 0 over them,
    /// then vCPU 0 and its kvm_run mapping (<see cref="CreateMappedVcpu"/>): the failing step's text (nothing is left
    /// open), or null with <paramref name="guest"/> owning all three.
    /// </summary>
    private static string? StartHostGuest(IKernel kernel, KernelFd system, KernelFd vm, ulong size, Action<MappedRegion> fill, out HostGuest? guest)
    {
        guest = null;
        long anonRc = MappedRegion.Map(kernel, null, size, LinuxConstants.PROT_READ | LinuxConstants.PROT_WRITE,
            LinuxConstants.MAP_PRIVATE | LinuxConstants.MAP_ANONYMOUS, 0, out var mapped);
        if (anonRc < 0) return "mmap anonymous " + Errno(anonRc);
        var memory = mapped!;
        string? error;
        KernelFd? vcpu = null;
        MappedRegion? run = null;
        try
        {
            fill(memory);
            var slot = new kvm_userspace_memory_region2 { slot = 0, guest_phys_addr = 0, memory_size = size, userspace_addr = (ulong)memory.Address };
            long slotRc = kernel.Ioctl(vm, KvmIoctls.KVM_SET_USER_MEMORY_REGION2, Bytes(ref slot));
            error = slotRc < 0 ? "memslot " + Errno(slotRc) : CreateMappedVcpu(kernel, system, vm, out vcpu, out run);
        }
        catch
        {
            memory.Dispose();
            throw;
        }
        if (error is not null)
        {
            memory.Dispose();
            return error;
        }
        guest = new HostGuest(memory, vcpu!, run!);
        return null;
    }

    /// <summary>" | " and the registers (KVM_GET_REGS) or why they could not be read; whether <paramref name="regs"/> holds them.</summary>
    private static bool AppendRegs(IKernel kernel, KernelFd vcpu, StringBuilder text, out kvm_regs regs)
    {
        regs = new kvm_regs();
        long get = kernel.Ioctl(vcpu, KvmIoctls.KVM_GET_REGS, Bytes(ref regs));
        text.Append(" | ").Append(get == 0 ? FuzzText.Regs(regs) : "get regs " + Errno(get));
        return get == 0;
    }
}
