// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using Iced.Intel;
using KvmSharp.Abi;
using KvmSharp.Kernel;
using KvmSharp.Memory;
using static Iced.Intel.AssemblerRegisters;
using static KvmSharp.Abi.KvmMsrFilter;

namespace KvmSharp.Fuzzing;

/// <summary>
/// <see cref="OpKind.MsrFilterGuestRun"/>: a fresh VM gets KVM_ENABLE_CAP(KVM_CAP_X86_USER_SPACE_MSR) with a drawn
/// reason mask, a valid MSR filter over the program's MSRs and then a second drawn one (a refused one must leave the
/// first in place: kvm_vm_ioctl_set_msr_filter replaces the filter only on success), and a 64-bit guest without IDT
/// that runs RDMSR and WRMSR (+RDMSR) of those MSRs. A filtered or failed access either exits to userspace
/// (KVM_EXIT_X86_RDMSR/WRMSR: reason, index and data compared; the fuzzer answers with a value, or with error set so
/// that #GP is injected) or raises #GP at once, which ends the run in KVM_EXIT_SHUTDOWN. The exits, the registers, the
/// values the guest stored and KVM_GET_MSRS of the MSRs (host reads are never filtered) are compared. The kvmclock
/// MSRs are among them: their GPAs point at a page that is never shown (the kernels write time there), or outside
/// memory; and after the run KVM_GET_CLOCK's flags, which a guest write of MSR_KVM_SYSTEM_TIME on vCPU 0 changes
/// (x86.c kvm_write_system_time: boot_vcpu_runs_old_kvmclock turns the master clock off).
/// </summary>
internal static partial class TinyGuestRun
{
    private const ulong PvclockGpa = 0x1C_0000;

    private const uint Star = 0xC000_0081, SysenterCs = 0x174, Unknown = 0x1234_5678, X2apicTpr = 0x808;

    /// <summary>The program's MSRs: ones KVM handles, one it does not, an x2APIC one (never filtered) and kvmclock's.</summary>
    private static readonly uint[] s_filterMsrs = [Star, SysenterCs, Unknown, X2apicTpr, 0x11, 0x12, 0x4B56_4D00, 0x4B56_4D01];

    public static string RunMsrFilter(IKernel kernel, KernelFd system, ulong seed)
    {
        var rng = new Random(unchecked((int)seed * 13 + 0x4F1));
        long vmRc = kernel.Ioctl(system, KvmIoctls.KVM_CREATE_VM, 0UL);
        if (vmRc < 0) return "create vm " + Errno(vmRc);
        using var vm = kernel.Adopt((int)vmRc);
        var text = new StringBuilder();

        ulong mask = MsrFilterOps.ReasonMask(rng);
        var cap = new kvm_enable_cap { cap = KvmCaps.KVM_CAP_X86_USER_SPACE_MSR };
        cap.args[0] = mask;
        text.Append(CultureInfo.InvariantCulture, $"user space msr 0x{mask:X} ").Append(Result(kernel.Ioctl(vm, KvmIoctls.KVM_ENABLE_CAP, Bytes(ref cap))));
        var buffer = MsrFilterOps.NewBuffer();
        var first = FilterOverProgram(rng, buffer);
        text.Append(", filter ").Append(Result(kernel.Ioctl(vm, KVM_X86_SET_MSR_FILTER, Bytes(ref first))));
        if (rng.Next(3) != 0)
        {
            // A second filter, valid or not, with bitmaps in a buffer of its own (the first's were copied at once).
            var second = MsrFilterOps.Draw((ulong)rng.NextInt64(), MsrFilterOps.NewBuffer(), null, validPointers: true);
            text.Append(", again ").Append(Result(kernel.Ioctl(vm, KVM_X86_SET_MSR_FILTER, Bytes(ref second))));
        }
        GC.KeepAlive(buffer);

        byte[] code = MsrProgram(rng, out int steps);
        if (StartLongModeGuest(kernel, system, vm, code, null, out var started) is string startError) return text + ": " + startError;
        using var guest = started!;
        var (memory, vcpu, run) = guest;
        if (EnterLongMode(kernel, vcpu, seed) is string setup) return text + ": " + setup;
        text.Append(": ");
        RunMsrExits(kernel, vcpu, run, text);
        AppendRegs(kernel, vcpu, text, out _);
        text.Append(" | data ").Append(Convert.ToHexString(memory.GetSpan(DataGpa, 16 * steps)));
        text.Append(" | msrs").Append(HostMsrs(kernel, vcpu));
        var clock = new kvm_clock_data();
        long get = kernel.Ioctl(vm, KvmIoctls.KVM_GET_CLOCK, Bytes(ref clock));
        text.Append(" | clock ").Append(get == 0 ? ClockOps.DescribeFlags(clock) : Errno(get));
        return text.ToString();
    }

    /// <summary>A valid filter whose ranges cover the program's MSRs with random bits (so some accesses are denied).</summary>
    private static kvm_msr_filter FilterOverProgram(Random rng, PinnedArray<byte> buffer)
    {
        rng.NextBytes(buffer.Span);
        var filter = new kvm_msr_filter { flags = rng.Next(3) == 0 ? KVM_MSR_FILTER_DEFAULT_DENY : KVM_MSR_FILTER_DEFAULT_ALLOW };
        int ranges = rng.Next(1, 5);
        for (int i = 0; i < ranges; i++)
        {
            ref var r = ref filter.ranges[i];
            r.flags = (uint)rng.Next(1, 4);
            r.@base = s_filterMsrs[rng.Next(s_filterMsrs.Length)] - (uint)rng.Next(3);
            r.nmsrs = (uint)rng.Next(1, 8);
            r.bitmap = buffer.Address + (ulong)(i * KVM_MSR_FILTER_MAX_BITMAP_SIZE);
        }
        return filter;
    }

    /// <summary>1–8 steps of RDMSR or WRMSR+RDMSR, each storing EDX:EAX in the next 16 bytes at r15; HLT.</summary>
    private static byte[] MsrProgram(Random rng, out int steps)
    {
        var a = new Assembler(64);
        steps = rng.Next(1, 9);
        for (int i = 0; i < steps; i++)
        {
            uint index = s_filterMsrs[rng.Next(s_filterMsrs.Length)];
            a.mov(ecx, index);
            if (rng.Next(2) == 0)
            {
                ulong value = FilterMsrValue(rng, index);
                a.mov(eax, (uint)value);
                a.mov(edx, (uint)(value >> 32));
                a.wrmsr();
            }
            a.rdmsr();
            a.mov(__dword_ptr[r15 + 16 * i], eax);
            a.mov(__dword_ptr[r15 + 16 * i + 4], edx);
        }
        a.hlt();
        return TinyGuestProgram.Encode(a, CodeGpa);
    }

    /// <summary>
    /// A value for <paramref name="index"/>: kvmclock GPAs never on a page that is shown (nor the code, stack or
    /// tables); any STAR; SYSENTER_CS's low 16 bits (any value is taken); the rest anything.
    /// </summary>
    private static ulong FilterMsrValue(Random rng, uint index) => index switch
    {
        0x11 or 0x4B56_4D00 => rng.Next(4) switch { 0 => 0, 1 => PvclockGpa + 0x800, 2 => 0x8000_0000, _ => 1UL << 50 },
        0x12 or 0x4B56_4D01 => rng.Next(5) switch
        {
            0 => 0,
            1 => PvclockGpa | 1,                      // enabled: kvm_guest_time_update fills it
            2 => PvclockGpa | 0x40,                   // disabled
            3 => (PvclockGpa + 0xFF0) | 1,            // crosses a page: kvm_gpc_activate refuses, silently
            _ => 0x8000_0001,                         // outside memory
        },
        SysenterCs => (ulong)rng.Next(0x10000),
        _ => (ulong)rng.NextInt64() ^ ((ulong)rng.Next(2) << 63),
    };

    /// <summary>
    /// KVM_RUN until HLT or another exit; a KVM_EXIT_X86_RDMSR/WRMSR is shown and answered: one in four with error
    /// (#GP), the rest with a value for a read.
    /// </summary>
    private static void RunMsrExits(IKernel kernel, KernelFd vcpu, MappedRegion run, StringBuilder text)
    {
        for (int n = 0; n < 24; n++)
        {
            long rc = kernel.Ioctl(vcpu, KvmIoctls.KVM_RUN, 0UL);
            uint reason = BinaryPrimitives.ReadUInt32LittleEndian(run.GetSpan(KvmRunLayout.exit_reason, 4));
            if (n > 0) text.Append("; ");
            if (rc < 0)
            {
                text.Append(CultureInfo.InvariantCulture, $"KVM_RUN {Errno(rc)} exit {reason}");
                return;
            }
            if (reason is not ((uint)KvmExitReason.KVM_EXIT_X86_RDMSR or (uint)KvmExitReason.KVM_EXIT_X86_WRMSR))
            {
                AppendLastExit(run, reason, text);
                return;
            }
            var msr = run.GetSpan(KvmRunLayout.msr_error, 24);
            uint why = BinaryPrimitives.ReadUInt32LittleEndian(msr[8..]);
            uint index = BinaryPrimitives.ReadUInt32LittleEndian(msr[12..]);
            ulong data = BinaryPrimitives.ReadUInt64LittleEndian(msr[16..]);
            text.Append(CultureInfo.InvariantCulture,
                $"{(reason == (uint)KvmExitReason.KVM_EXIT_X86_RDMSR ? "rdmsr" : "wrmsr")} exit reason={why} index=0x{index:X} data=0x{data:X} error={msr[0]} pad={Convert.ToHexString(msr[1..8])}");
            msr[0] = (byte)(n % 4 == 3 ? 1 : 0);
            if (reason == (uint)KvmExitReason.KVM_EXIT_X86_RDMSR) BinaryPrimitives.WriteUInt64LittleEndian(msr[16..], 0x0123_4567_0000_0000UL | index);
        }
        text.Append("; exit limit");
    }

    /// <summary>KVM_GET_MSRS of the program's MSRs (host-initiated: no filter applies): the count read and the values.</summary>
    private static string HostMsrs(IKernel kernel, KernelFd vcpu)
    {
        // The ones a host read refuses last: KVM_GET_MSRS stops at the first refused entry.
        uint[] order = [0x11, 0x12, 0x4B56_4D00, 0x4B56_4D01, Star, SysenterCs, X2apicTpr, Unknown];
        int header = Marshal.SizeOf<kvm_msrs>(), entry = Marshal.SizeOf<kvm_msr_entry>();
        var buffer = new byte[header + order.Length * entry];
        MemoryMarshal.Write(buffer, new kvm_msrs { nmsrs = (uint)order.Length });
        var entries = MemoryMarshal.Cast<byte, kvm_msr_entry>(buffer.AsSpan(header));
        for (int i = 0; i < order.Length; i++) entries[i].index = order[i];
        long rc = kernel.Ioctl(vcpu, KvmIoctls.KVM_GET_MSRS, buffer);
        if (rc < 0) return " " + Errno(rc);
        var text = new StringBuilder(string.Create(CultureInfo.InvariantCulture, $" {rc}:"));
        for (int i = 0; i < (int)Math.Min(rc, order.Length); i++) text.Append(CultureInfo.InvariantCulture, $" {entries[i].index:X}={entries[i].data:X}");
        return text.ToString();
    }
}
