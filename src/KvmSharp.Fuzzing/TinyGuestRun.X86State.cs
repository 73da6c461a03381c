// SPDX-License-Identifier: MIT
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using Iced.Intel;
using KvmSharp.Abi;
using KvmSharp.Kernel;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Fuzzing;

/// <summary>
/// <see cref="OpKind.X86GuestRun"/>: the 64-bit tiny guest's layout in host memory, a CPUID table set before the first
/// KVM_RUN (<see cref="X86StateOps.CpuidTable"/>), and a program of CPUID, RDMSR and WRMSR whose answers it stores in
/// its data page. There is no IDT: a #GP (a refused RDMSR/WRMSR) ends the run in KVM_EXIT_SHUTDOWN, so where the
/// program stopped and what it stored show which accesses were refused. After the run KVM_SET_CPUID2 is tried again
/// with the table as read back (accepted), with one value changed and with one entry more (both EINVAL).
/// </summary>
internal static partial class TinyGuestRun
{
    public static string RunX86State(IKernel kernel, KernelFd system, ulong seed, bool withReported)
    {
        var rng = new Random(unchecked((int)seed * 17 + 0x3D));
        long vmRc = kernel.Ioctl(system, KvmIoctls.KVM_CREATE_VM, 0UL);
        if (vmRc < 0) return "create vm " + Errno(vmRc);
        using var vm = kernel.Adopt((int)vmRc);
        var table = X86StateOps.CpuidTable(seed, rng.Next(0, 7));
        var faulting = CpuidFaultingStream(seed);
        bool ring3 = faulting?.Next(3) == 0;
        byte[] code = X86Program(rng, table, withReported, faulting is null || ring3 ? null : a => CpuidFaultingTail(a, faulting, table, withReported));
        if (ring3) code = Ring3Program(faulting!, table);
        if (StartLongModeGuest(kernel, system, vm, code, null, out var started) is string startError) return startError;
        using var guest = started!;
        var (memory, vcpu, run) = guest;

        var text = new StringBuilder();
        bool setTable = rng.Next(6) != 0;
        if (setTable) text.Append("cpuid ").Append(Result(SetCpuid(kernel, vcpu, table))).Append(": ");
        string? setup = EnterLongMode(kernel, vcpu, seed);
        if (setup is not null) return text + setup;
        if (faulting is not null)
        {
            CpuidFaultingSetup(kernel, vm, vcpu, faulting, withReported, text);
            if (ring3 && EnterRing3(kernel, vcpu, memory) is string ring3Error) return text + ring3Error;
            if (ring3) text.Append("cpl 3: ");
        }
        RunExits(kernel, vcpu, run, text);
        if (faulting is not null) text.Append(" | ").Append(GetCpuidFaultingMsrs(kernel, vcpu));

        // kvm_set_cpuid after the vCPU ran: only the table it has (after kvm_update_cpuid_runtime) is accepted.
        var back = GetCpuid(kernel, vcpu, out long getRc);
        text.Append(" | get cpuid ").Append(Result(getRc));
        if (getRc == 0)
        {
            text.Append(CultureInfo.InvariantCulture, $" {back.Length} entries, again {Result(SetCpuid(kernel, vcpu, back))}");
            if (back.Length > 0)
            {
                var changed = (kvm_cpuid_entry2[])back.Clone();
                changed[rng.Next(changed.Length)].ecx ^= 1u << rng.Next(32);
                text.Append(", changed ").Append(Result(SetCpuid(kernel, vcpu, changed)));
            }
            text.Append(", one more ").Append(Result(SetCpuid(kernel, vcpu, [.. back, new kvm_cpuid_entry2 { function = 0x8000_0005 }])));
        }
        var regs = new kvm_regs();
        long get = kernel.Ioctl(vcpu, KvmIoctls.KVM_GET_REGS, Bytes(ref regs));
        text.Append(" | ").Append(get == 0 ? FuzzText.Regs(regs) : "get regs " + Errno(get));
        text.Append(" | data ").Append(Convert.ToHexString(memory.GetSpan(DataGpa, faulting is null ? 16 * 10 : TailData + 32)));
        return text.ToString();
    }

    private static long SetCpuid(IKernel kernel, KernelFd vcpu, kvm_cpuid_entry2[] table)
    {
        var buffer = new byte[Marshal.SizeOf<kvm_cpuid2>() + Math.Max(1, table.Length) * Marshal.SizeOf<kvm_cpuid_entry2>()];
        MemoryMarshal.Write(buffer, new kvm_cpuid2 { nent = (uint)table.Length });
        MemoryMarshal.AsBytes(table.AsSpan()).CopyTo(buffer.AsSpan(Marshal.SizeOf<kvm_cpuid2>()));
        return kernel.Ioctl(vcpu, KvmIoctls.KVM_SET_CPUID2, buffer);
    }

    private static kvm_cpuid_entry2[] GetCpuid(IKernel kernel, KernelFd vcpu, out long rc)
    {
        const int Max = 256;
        var buffer = new byte[Marshal.SizeOf<kvm_cpuid2>() + Max * Marshal.SizeOf<kvm_cpuid_entry2>()];
        MemoryMarshal.Write(buffer, new kvm_cpuid2 { nent = Max });
        rc = kernel.Ioctl(vcpu, KvmIoctls.KVM_GET_CPUID2, buffer);
        if (rc != 0) return [];
        uint nent = Math.Min(MemoryMarshal.Read<kvm_cpuid2>(buffer).nent, Max);
        return MemoryMarshal.Cast<byte, kvm_cpuid_entry2>(buffer.AsSpan(Marshal.SizeOf<kvm_cpuid2>()))[..(int)nent].ToArray();
    }

    /// <summary>
    /// 1–10 steps of CPUID (mostly a leaf of <paramref name="table"/>, sometimes one it lacks or above a maximum), RDMSR
    /// or WRMSR (<see cref="X86StateOps.Index"/>, guest pool), each storing EAX..EDX in the next 16 bytes at r15;
    /// <paramref name="tail"/> (<see cref="CpuidFaultingTail"/>); HLT.
    /// </summary>
    private static byte[] X86Program(Random rng, kvm_cpuid_entry2[] table, bool withReported, Action<Assembler>? tail = null)
    {
        var a = new Assembler(64);
        int steps = rng.Next(1, 11);
        for (int i = 0; i < steps; i++)
        {
            int off = 16 * i;
            switch (rng.Next(3))
            {
                case 0:
                {
                    uint function = table.Length > 0 && rng.Next(3) != 0 ? table[rng.Next(table.Length)].function : rng.Next(6) switch
                    {
                        0 => (uint)rng.Next(0, 0x21),
                        1 => 0x4000_0000 + (uint)rng.Next(0, 0x200),
                        2 => 0x8000_0000 + (uint)rng.Next(0, 0x20),
                        3 => 0xC000_0000 + (uint)rng.Next(0, 8),
                        4 => 0xB,
                        _ => (uint)rng.Next(),
                    };
                    uint index = table.Length > 0 && rng.Next(2) == 0 ? table[rng.Next(table.Length)].index : (uint)rng.Next(0, 4);
                    a.mov(eax, function);
                    a.mov(ecx, index);
                    a.cpuid();
                    a.mov(__dword_ptr[r15 + off + 4], ebx);
                    a.mov(__dword_ptr[r15 + off + 8], ecx);
                    a.mov(__dword_ptr[r15 + off + 12], edx);
                    a.mov(__dword_ptr[r15 + off], eax);
                    break;
                }
                case 1:
                    a.mov(ecx, X86StateOps.Index(rng, withReported, guest: true));
                    a.rdmsr();
                    a.mov(__dword_ptr[r15 + off], eax);
                    a.mov(__dword_ptr[r15 + off + 4], edx);
                    break;
                default:
                {
                    uint index = X86StateOps.Index(rng, withReported, guest: true);
                    ulong value = X86StateOps.Value(rng, index, withReported);
                    a.mov(ecx, index);
                    a.mov(eax, (uint)value);
                    a.mov(edx, (uint)(value >> 32));
                    a.wrmsr();
                    // Read it back: what the write stored (or that the read is refused).
                    a.rdmsr();
                    a.mov(__dword_ptr[r15 + off], eax);
                    a.mov(__dword_ptr[r15 + off + 4], edx);
                    break;
                }
            }
        }
        tail?.Invoke(a);
        a.hlt();
        return TinyGuestProgram.Encode(a, CodeGpa);
    }
}
