// SPDX-License-Identifier: MIT
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using Iced.Intel;
using KvmSharp.Abi;
using KvmSharp.Kernel;
using KvmSharp.Memory;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Fuzzing;

/// <summary>
/// CPUID faulting in <see cref="OpKind.X86GuestRun"/> (arch/x86/kvm/x86.c): one run in four, drawn from a stream of its
/// own, first KVM_ENABLE_CAP(KVM_CAP_MSR_PLATFORM_INFO) (args[0] 0 forbids the guest's RDMSR of MSR_PLATFORM_INFO,
/// anything else allows it; flags → EINVAL) and KVM_SET_MSRS of MSR_PLATFORM_INFO / MSR_MISC_FEATURES_ENABLES
/// (<see cref="X86StateOps.CpuidFaultingValue"/>, steered around HostDeviations.KvmPvmMiscFeaturesEnablesUnchecked).
/// Then either the ring-0 program with a tail that writes and reads MSR_MISC_FEATURES_ENABLES, reads MSR_PLATFORM_INFO,
/// runs CPUID and sometimes writes MSR_PLATFORM_INFO (always a #GP for the guest), or a program entered at CPL 3
/// (KVM_SET_SREGS with DPL-3 CS and SS, user page tables) that runs CPUID — a #GP with CPUID_FAULT on
/// (kvm_emulate_cpuid: "if (cpuid_fault_enabled(vcpu) &amp;&amp; !kvm_require_cpl(vcpu, 0)) return 1") — and ends in
/// HLT, a #GP at CPL 3. Without an IDT every #GP is KVM_EXIT_SHUTDOWN; the data page shows how far it got. Both MSRs
/// are read back with KVM_GET_MSRS after the run.
/// </summary>
internal static partial class TinyGuestRun
{
    /// <summary>GDT entries 3 and 4: DPL-3 64-bit code and data (SDM Vol. 3A 3.4.5).</summary>
    private const ulong UserCodeSegment = 0x00AF_FB00_0000_FFFF, UserDataSegment = 0x00CF_F300_0000_FFFF;

    private const ushort UserCode = 0x18 | 3, UserData = 0x20 | 3;

    /// <summary>Where the ring-0 tail stores: after the ten steps of <see cref="X86Program"/>.</summary>
    private const int TailData = 16 * 10;

    /// <summary>The faulting stream of an X86GuestRun seed, or null for the three runs in four without it.</summary>
    private static Random? CpuidFaultingStream(ulong seed) =>
        (seed >> 11) % 4 == 0 ? new Random(unchecked((int)(seed >> 5) ^ 0xCF140)) : null;

    /// <summary>The cap and the host's MSR writes; their results go to <paramref name="text"/>.</summary>
    private static void CpuidFaultingSetup(IKernel kernel, KernelFd vm, KernelFd vcpu, Random cf, bool withReported, StringBuilder text)
    {
        if (cf.Next(2) == 0)
        {
            var cap = new kvm_enable_cap { cap = KvmCaps.KVM_CAP_MSR_PLATFORM_INFO, flags = cf.Next(8) == 0 ? 1u : 0u };
            cap.args[0] = cf.Next(3) switch { 0 => 0, 1 => 1, _ => 0x100 };
            text.Append(CultureInfo.InvariantCulture, $"platform_info cap {cap.args[0]:X} flags {cap.flags} ")
                .Append(Result(kernel.Ioctl(vm, KvmIoctls.KVM_ENABLE_CAP, Bytes(ref cap)))).Append(": ");
        }
        int count = cf.Next(0, 3);
        if (count == 0) return;
        var entries = new kvm_msr_entry[count];
        for (int i = 0; i < count; i++)
        {
            // PLATFORM_INFO first when both: its CPUID_FAULT decides whether MISC_FEATURES_ENABLES takes bit 0.
            uint index = count == 2 ? (i == 0 ? X86StateOps.PlatformInfo : X86StateOps.MiscFeaturesEnables)
                : cf.Next(2) == 0 ? X86StateOps.PlatformInfo : X86StateOps.MiscFeaturesEnables;
            entries[i] = new kvm_msr_entry { index = index, data = X86StateOps.CpuidFaultingValue(cf, index, withReported) };
        }
        text.Append("set faulting msrs ").Append(SetMsrs(kernel, vcpu, entries)).Append(": ");
    }

    private static string SetMsrs(IKernel kernel, KernelFd vcpu, kvm_msr_entry[] entries)
    {
        var buffer = new byte[Marshal.SizeOf<kvm_msrs>() + entries.Length * Marshal.SizeOf<kvm_msr_entry>()];
        MemoryMarshal.Write(buffer, new kvm_msrs { nmsrs = (uint)entries.Length });
        MemoryMarshal.AsBytes(entries.AsSpan()).CopyTo(buffer.AsSpan(Marshal.SizeOf<kvm_msrs>()));
        long rc = kernel.Ioctl(vcpu, KvmIoctls.KVM_SET_MSRS, buffer);
        return rc < 0 ? Errno(rc) : rc.ToString(CultureInfo.InvariantCulture);
    }

    /// <summary>KVM_GET_MSRS of both MSRs after the run.</summary>
    private static string GetCpuidFaultingMsrs(IKernel kernel, KernelFd vcpu)
    {
        var entries = new kvm_msr_entry[] { new() { index = X86StateOps.PlatformInfo }, new() { index = X86StateOps.MiscFeaturesEnables } };
        var buffer = new byte[Marshal.SizeOf<kvm_msrs>() + entries.Length * Marshal.SizeOf<kvm_msr_entry>()];
        MemoryMarshal.Write(buffer, new kvm_msrs { nmsrs = (uint)entries.Length });
        MemoryMarshal.AsBytes(entries.AsSpan()).CopyTo(buffer.AsSpan(Marshal.SizeOf<kvm_msrs>()));
        long rc = kernel.Ioctl(vcpu, KvmIoctls.KVM_GET_MSRS, buffer);
        if (rc < 0) return "get faulting msrs " + Errno(rc);
        var back = MemoryMarshal.Cast<byte, kvm_msr_entry>(buffer.AsSpan(Marshal.SizeOf<kvm_msrs>()));
        return string.Create(CultureInfo.InvariantCulture, $"faulting msrs {rc}: CE={back[0].data:X} 140={back[1].data:X}");
    }

    /// <summary>
    /// The ring-0 tail: WRMSR MSR_MISC_FEATURES_ENABLES then RDMSR it, RDMSR MSR_PLATFORM_INFO, CPUID (a leaf of the
    /// table or 0) in a drawn order, each storing from <see cref="TailData"/>; one tail in four ends in a WRMSR of
    /// MSR_PLATFORM_INFO (x86.c kvm_set_msr_common: "if (!msr_info->host_initiated ...) return 1").
    /// </summary>
    private static void CpuidFaultingTail(Assembler a, Random cf, kvm_cpuid_entry2[] table, bool withReported)
    {
        int[] order = [0, 1, 2];
        cf.Shuffle(order);
        foreach (int step in order)
        {
            int off = TailData + 8 * step;
            switch (step)
            {
                case 0:
                    ulong value = X86StateOps.CpuidFaultingValue(cf, X86StateOps.MiscFeaturesEnables, withReported);
                    a.mov(ecx, X86StateOps.MiscFeaturesEnables);
                    a.mov(eax, (uint)value);
                    a.mov(edx, (uint)(value >> 32));
                    a.wrmsr();
                    a.rdmsr();
                    a.mov(__dword_ptr[r15 + off], eax);
                    a.mov(__dword_ptr[r15 + off + 4], edx);
                    break;
                case 1:
                    a.mov(ecx, X86StateOps.PlatformInfo);
                    a.rdmsr();
                    a.mov(__dword_ptr[r15 + off], eax);
                    a.mov(__dword_ptr[r15 + off + 4], edx);
                    break;
                default:
                    EmitCpuid(a, cf, table, off, 8);
                    break;
            }
        }
        if (cf.Next(4) == 0)
        {
            a.mov(ecx, X86StateOps.PlatformInfo);
            a.mov(eax, 0x8000_0000);
            a.xor(edx, edx);
            a.wrmsr();
            a.mov(__dword_ptr[r15 + TailData + 24], ecx);
        }
    }

    /// <summary>CPUID of a leaf of <paramref name="table"/> (or leaf 0), EAX and EBX (and ECX, EDX with 16 bytes) stored at r15 + <paramref name="off"/>.</summary>
    private static void EmitCpuid(Assembler a, Random cf, kvm_cpuid_entry2[] table, int off, int bytes)
    {
        uint function = table.Length > 0 && cf.Next(2) == 0 ? table[cf.Next(table.Length)].function : 0;
        a.mov(eax, function);
        a.xor(ecx, ecx);
        a.cpuid();
        a.mov(__dword_ptr[r15 + off], eax);
        a.mov(__dword_ptr[r15 + off + 4], ebx);
        if (bytes < 16) return;
        a.mov(__dword_ptr[r15 + off + 8], ecx);
        a.mov(__dword_ptr[r15 + off + 12], edx);
    }

    /// <summary>The CPL-3 program: 1–3 CPUIDs storing 16 bytes each at r15, then HLT (a #GP at CPL 3).</summary>
    private static byte[] Ring3Program(Random cf, kvm_cpuid_entry2[] table)
    {
        var a = new Assembler(64);
        int steps = cf.Next(1, 4);
        for (int i = 0; i < steps; i++) EmitCpuid(a, cf, table, 16 * i, 16);
        a.hlt();
        return TinyGuestProgram.Encode(a, CodeGpa);
    }

    /// <summary>
    /// Puts the vCPU at CPL 3 at <see cref="CodeGpa"/>: the DPL-3 GDT entries, the U/S bit on the path to the first
    /// 2 MiB page (code, data and stack), and CS and SS with DPL 3 (svm_set_segment: the CPL is SS.DPL).
    /// </summary>
    private static string? EnterRing3(IKernel kernel, KernelFd vcpu, MappedRegion memory)
    {
        var gdt = MemoryMarshal.Cast<byte, ulong>(memory.GetSpan(GdtGpa, 40));
        gdt[3] = UserCodeSegment;
        gdt[4] = UserDataSegment;
        const ulong User = 1UL << 2;
        foreach (ulong entry in new[] { Pml4, Pdpt, Pd })
            MemoryMarshal.Cast<byte, ulong>(memory.GetSpan(entry, 8))[0] |= User;
        var s = new kvm_sregs();
        long rc = kernel.Ioctl(vcpu, KvmIoctls.KVM_GET_SREGS, Bytes(ref s));
        if (rc < 0) return "get sregs " + Errno(rc);
        s.gdt.limit = 39;
        s.cs = new kvm_segment { @base = 0, limit = 0xFFFF_FFFF, selector = UserCode, type = 0xB, present = 1, dpl = 3, s = 1, l = 1, g = 1 };
        var data = new kvm_segment { @base = 0, limit = 0xFFFF_FFFF, selector = UserData, type = 3, present = 1, dpl = 3, db = 1, s = 1, g = 1 };
        s.ds = s.es = s.ss = data;
        rc = kernel.Ioctl(vcpu, KvmIoctls.KVM_SET_SREGS, Bytes(ref s));
        return rc < 0 ? "set sregs " + Errno(rc) : null;
    }
}
