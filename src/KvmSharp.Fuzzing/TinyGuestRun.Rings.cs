// SPDX-License-Identifier: MIT
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using KvmSharp.Abi;
using KvmSharp.Kernel;
using KvmSharp.Memory;

namespace KvmSharp.Fuzzing;

/// <summary>
/// What a ring-changing 64-bit program (<see cref="TinyGuestProgram.RingStream"/>) needs besides the plain layout:
/// GDT entries 4-8 (ring-3 32-bit code 0x20, ring-3 data 0x28, ring-3 64-bit code 0x30, so that STAR[63:48] = 0x20 makes
/// SYSRETQ load SS 0x2B and CS 0x33, Linux's order; a 64-bit TSS at 0x38, SDM Vol. 3A 8.2.3), a TSS whose RSP0 is the
/// stack of interrupts from ring 3 (SDM Vol. 3A 6.14.4), an IDT with gates to the program's handlers: DPL-3 gates for
/// INT3 (trap gate) and INT 0x80 (interrupt gate), DPL-0 interrupt gates for #GP and #PF — every other vector not
/// present, so any other fault still ends in a triple fault, as without an IDT — the U/S bit on the paging path of the
/// first 2 MiB (code, data, stack) and of the MMIO page's 2 MiB, not of the 2 MiB above it (the #PF path), EFER.SCE,
/// and STAR/LSTAR/SFMASK through KVM_SET_MSRS. The run's text adds a hash of the last exception frame.
/// </summary>
internal static partial class TinyGuestRun
{
    private const ulong RingIdtGpa = 0x5000, RingTssGpa = 0x6000, RingRsp0 = 0x8000;

    private const ushort RingTssSelector = 0x38;

    private const uint MsrStar = 0xC000_0081, MsrLstar = 0xC000_0082, MsrSyscallMask = 0xC000_0084;

    /// <summary>GDT entries 3-7, the TSS, the IDT's two gates and the U/S bits.</summary>
    private static void WriteRingTables(MappedRegion memory, RingEntries entries)
    {
        var gdt = MemoryMarshal.Cast<byte, ulong>(memory.GetSpan(GdtGpa, 72));
        gdt[3] = 0;
        gdt[4] = 0x00CF_FB00_0000_FFFF; // ring-3 32-bit code (SYSRET's compatibility-mode slot; unused)
        gdt[5] = 0x00CF_F300_0000_FFFF; // ring-3 data
        gdt[6] = 0x00AF_FB00_0000_FFFF; // ring-3 64-bit code
        // 64-bit TSS, busy (TR is loaded through KVM_SET_SREGS), limit 0x67.
        gdt[7] = 0x67 | (RingTssGpa & 0xFF_FFFF) << 16 | 0x8BUL << 40 | (RingTssGpa >> 24 & 0xFF) << 56;
        gdt[8] = RingTssGpa >> 32;
        memory.GetSpan(RingTssGpa, 0x68).Clear();
        MemoryMarshal.Write(memory.GetSpan(RingTssGpa + 4, 8), RingRsp0);
        memory.GetSpan(RingIdtGpa, 0x1000).Clear();
        WriteGate(memory, 3, entries.Handler, 0xEF);
        WriteGate(memory, TinyGuestProgram.RingVector, entries.Handler, 0xEE);
        WriteGate(memory, 13, entries.GpHandler, 0x8E);
        WriteGate(memory, 14, entries.PfHandler, 0x8E);
        const ulong User = 1UL << 2;
        foreach (ulong entry in new[] { Pml4, Pdpt })
            MemoryMarshal.Cast<byte, ulong>(memory.GetSpan(entry, 8))[0] |= User;
        var pd = MemoryMarshal.Cast<byte, ulong>(memory.GetSpan(Pd, 32));
        pd[(int)(CodeGpa >> 21)] |= User;
        pd[(int)(MmioGpa >> 21)] |= User;
    }

    /// <summary>A 64-bit gate (SDM Vol. 3A 6.14.1): offset, selector 0x08, IST 0, type and DPL <paramref name="attributes"/>.</summary>
    private static void WriteGate(MappedRegion memory, int vector, ulong offset, byte attributes)
    {
        var gate = MemoryMarshal.Cast<byte, ulong>(memory.GetSpan(RingIdtGpa + (ulong)vector * 16, 16));
        gate[0] = (offset & 0xFFFF) | (ulong)TinyGuestProgram.CodeSelector << 16 | (ulong)attributes << 40 | (offset >> 16 & 0xFFFF) << 48;
        gate[1] = offset >> 32;
    }

    /// <summary>After <see cref="EnterLongMode"/>: the GDT limit, IDT, TR and EFER.SCE, then STAR/LSTAR/SFMASK.</summary>
    private static string? EnterRings(IKernel kernel, KernelFd vcpu, RingEntries entries)
    {
        var s = new kvm_sregs();
        long rc = kernel.Ioctl(vcpu, KvmIoctls.KVM_GET_SREGS, Bytes(ref s));
        if (rc < 0) return "get sregs " + Errno(rc);
        s.gdt.limit = 71;
        s.idt.@base = RingIdtGpa;
        s.idt.limit = 0xFFF;
        s.tr = new kvm_segment { @base = RingTssGpa, limit = 0x67, selector = RingTssSelector, type = 0xB, present = 1 };
        s.efer |= 1; // SCE
        rc = kernel.Ioctl(vcpu, KvmIoctls.KVM_SET_SREGS, Bytes(ref s));
        if (rc < 0) return "set sregs " + Errno(rc);
        // STAR: SYSCALL CS 0x08 (SS 0x10), SYSRET base 0x20.
        var msrs = new kvm_msr_entry[]
        {
            new() { index = MsrStar, data = 0x20UL << 48 | (ulong)TinyGuestProgram.CodeSelector << 32 },
            new() { index = MsrLstar, data = entries.SyscallEntry },
            new() { index = MsrSyscallMask, data = entries.SyscallMask },
        };
        string set = SetMsrs(kernel, vcpu, msrs);
        return set == "3" ? null : "set ring msrs " + set;
    }

    /// <summary>The last exception frame the CPU pushed on TSS.RSP0 (error code, RIP, CS, RFLAGS, RSP, SS).</summary>
    private static void AppendRingFrame(MappedRegion memory, StringBuilder text) =>
        text.Append(CultureInfo.InvariantCulture, $" rsp0=0x{Fnv(memory.GetSpan(RingRsp0 - 0x40, 0x40)):X16}");
}
