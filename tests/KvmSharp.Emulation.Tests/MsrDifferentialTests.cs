// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using KvmSharp.Abi;
using KvmSharp.Kernel;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// Host-initiated KVM_SET_MSRS / KVM_GET_MSRS side by side on this host's kernel and the emulator: for every modeled
/// MSR and a spread of values (canonical and not, reserved bits, 32-bit limits), the count processed and the value
/// read back must be the same. Left out: what HostDeviations names for this host (PAT validity, MISC_ENABLE reset,
/// TSC write-back) and the TSC itself (it moves).
/// </summary>
public sealed class MsrDifferentialTests
{
    private const string NoKvm = "/dev/kvm cannot be opened here: there is no real kernel to compare with";

    private static readonly uint[] Msrs =
    [
        0x1b, 0x174, 0x175, 0x176, 0xc000_0080, 0xc000_0081, 0xc000_0082, 0xc000_0083, 0xc000_0084, 0xc000_0100,
        0xc000_0101, 0xc000_0102, 0xc000_0103, 0x10a, 0x8b, 0xce, 0x1234_5678, 0x0, 0x1, 0x4000_0000,
    ];

    private static readonly ulong[] Values =
    [
        0, 1, 0x100, 0x400, 0x500, 0x800, 0x1000, 0xfee0_0900, 0xfee0_0d00, 0xfec0_0800, 0xffff_ffff, 1UL << 32,
        0x0000_7fff_ffff_f000, 0x0000_8000_0000_0000, 0xffff_8000_0000_0000, 0x8000_0000_0000_0000, ulong.MaxValue,
    ];

    [SkippableFact]
    public void Host_initiated_writes_and_reads_agree_value_by_value()
    {
        Skip.IfNot(Raw.HostHasKvm, NoKvm);
        using var emu = new EmulatedKernel();
        var real = Scenario(LinuxKernel.Instance);
        var emulated = Scenario(emu);
        Assert.Equal(real.Count, emulated.Count);
        for (int i = 0; i < real.Count; i++) Assert.True(real[i] == emulated[i], $"real {real[i]} | emulator {emulated[i]}");
        Assert.Equal(0, emu.OpenFdCount);
    }

    private static List<string> Scenario(IKernel k)
    {
        var log = new List<string>();
        using var sys = Raw.OpenKvm(k);
        foreach (uint msr in Msrs)
        {
            using var vm = Raw.CreateVm(k, sys);
            ulong id = 0;
            foreach (ulong value in Values)
            {
                // A fresh vCPU per MSR and value: no earlier write (e.g. EFER.LME) changes the rules.
                using var vcpu = k.Adopt((int)k.Ioctl(vm, KvmIoctls.KVM_CREATE_VCPU, id++));
                long set = k.Ioctl(vcpu, KvmIoctls.KVM_SET_MSRS, One(msr, value));
                var get = One(msr, 0x5a5a);
                long got = k.Ioctl(vcpu, KvmIoctls.KVM_GET_MSRS, get);
                log.Add($"MSR 0x{msr:X} := 0x{value:X}: set {set}, get {got} -> 0x{BinaryPrimitives.ReadUInt64LittleEndian(get.AsSpan(16)):X}");
            }
        }
        return log;
    }

    private static byte[] One(uint index, ulong data)
    {
        var b = new byte[24];
        BinaryPrimitives.WriteUInt32LittleEndian(b, 1);
        BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(8), index);
        BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(16), data);
        return b;
    }
}
