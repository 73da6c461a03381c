// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using KvmSharp.Abi;
using KvmSharp.Abi.Arm64;
using KvmSharp.Arm64;

namespace KvmSharp.Tests.Abi;

/// <summary>
/// The arm64 KVM_SET_GUEST_DEBUG / KVM_EXIT_DEBUG mirror (KvmArm64GuestDebug.cs) against the literal layout of
/// arch/arm64/include/uapi/asm/kvm.h: struct kvm_guest_debug_arch { __u64 dbg_bcr[16], dbg_bvr[16], dbg_wcr[16],
/// dbg_wvr[16]; }, struct kvm_guest_debug { __u32 control; __u32 pad; struct kvm_guest_debug_arch arch; }, struct
/// kvm_debug_exit_arch { __u32 hsr; __u32 hsr_high; __u64 far; } (the oracle's headers are x86's: OracleExclusions).
/// </summary>
public class Arm64GuestDebugAbiTests
{
    [Fact]
    public void Struct_sizes_and_offsets_match_the_header()
    {
        Assert.Equal(512, Unsafe.SizeOf<kvm_guest_debug_arch_arm64>());
        Assert.Equal(520, Unsafe.SizeOf<kvm_guest_debug_arm64>());
        Assert.Equal(16, Unsafe.SizeOf<kvm_debug_exit_arch_arm64>());
        Assert.Equal(520, Marshal.SizeOf<kvm_guest_debug_arm64>());
        Assert.Equal((0, 4, 8), (Off<kvm_guest_debug_arm64>("control"), Off<kvm_guest_debug_arm64>("pad"), Off<kvm_guest_debug_arm64>("arch")));
        Assert.Equal((0, 128, 256, 384), (Off<kvm_guest_debug_arch_arm64>("dbg_bcr"), Off<kvm_guest_debug_arch_arm64>("dbg_bvr"),
            Off<kvm_guest_debug_arch_arm64>("dbg_wcr"), Off<kvm_guest_debug_arch_arm64>("dbg_wvr")));
        Assert.Equal((0, 4, 8), (Off<kvm_debug_exit_arch_arm64>("hsr"), Off<kvm_debug_exit_arch_arm64>("hsr_high"), Off<kvm_debug_exit_arch_arm64>("far")));
    }

    [Fact]
    public void Request_and_constants_match_the_header()
    {
        // _IOW(KVMIO, 0x9b, struct kvm_guest_debug): dir 1 (write) << 30 | 520 << 16 | 0xAE << 8 | 0x9b.
        Assert.Equal(0x4208AE9Bu, KvmArm64GuestDebug.KVM_SET_GUEST_DEBUG_ARM64);
        Assert.Equal("KVM_SET_GUEST_DEBUG", KvmIoctls.NameOf(KvmArm64GuestDebug.KVM_SET_GUEST_DEBUG_ARM64));
        Assert.Equal(0x4048AE9Bu, KvmIoctls.KVM_SET_GUEST_DEBUG); // x86's 72-byte struct: a different request
        Assert.Equal(16, KvmArm64GuestDebug.KVM_ARM_MAX_DBG_REGS);
        Assert.Equal(0x20000u, KvmArm64GuestDebug.KVM_GUESTDBG_USE_HW);
        Assert.Equal((ushort)1, KvmArm64GuestDebug.KVM_DEBUG_ARCH_HSR_HIGH_VALID);
        // kvm_run.debug.arch sits at the exit union (32): hsr 32, hsr_high 36, far 40.
        Assert.Equal((32, 36, 40), (KvmArm64GuestDebug.kvm_run_debug_arch_hsr, KvmArm64GuestDebug.kvm_run_debug_arch_hsr_high,
            KvmArm64GuestDebug.kvm_run_debug_arch_far));
        Assert.Equal((uint)GuestDebugFlags.UseHardwareBreakpoints, KvmArm64GuestDebug.KVM_GUESTDBG_USE_HW);
    }

    [Fact]
    public void Options_become_the_struct_bytes_where_the_kernel_reads_them_and_round_trip()
    {
        var options = new Arm64GuestDebugOptions
        {
            Flags = GuestDebugFlags.Enable | GuestDebugFlags.UseHardwareBreakpoints | GuestDebugFlags.SingleStep,
            Breakpoints = [new(0x1000, 0x1E7), new(0, 0), new(0x3000, 0x1E7)],
            Watchpoints = [.. Enumerable.Range(0, 16).Select(i => new Arm64DebugRegisterPair(0x8000 + (ulong)i * 8, 0x1FF7))],
        };
        var dbg = options.ToAbi();
        byte[] bytes = MemoryMarshal.AsBytes(new Span<kvm_guest_debug_arm64>(ref dbg)).ToArray();
        ulong At(int offset) => BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan(offset));
        Assert.Equal(0x20003u, BinaryPrimitives.ReadUInt32LittleEndian(bytes));
        Assert.Equal(0u, BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(4)));
        Assert.Equal((0x1E7UL, 0UL, 0x1E7UL, 0UL), (At(8), At(16), At(24), At(32)));           // dbg_bcr[0..3]
        Assert.Equal((0x1000UL, 0UL, 0x3000UL, 0UL), (At(136), At(144), At(152), At(160)));    // dbg_bvr[0..3]
        Assert.Equal((0x1FF7UL, 0x1FF7UL), (At(264), At(264 + 15 * 8)));                       // dbg_wcr[0], [15]
        Assert.Equal((0x8000UL, 0x8078UL), (At(392), At(392 + 15 * 8)));                       // dbg_wvr[0], [15]

        var back = Arm64GuestDebugOptions.FromAbi(dbg);
        Assert.Equal(options.Flags, back.Flags);
        Assert.Equal(options.Breakpoints, back.Breakpoints);
        Assert.Equal(options.Watchpoints, back.Watchpoints);
        var again = back.ToAbi();
        Assert.Equal(bytes, MemoryMarshal.AsBytes(new Span<kvm_guest_debug_arm64>(ref again)).ToArray());
    }

    [Fact]
    public void Options_hold_at_most_sixteen_breakpoints_and_sixteen_watchpoints()
    {
        var seventeen = Enumerable.Repeat(Arm64DebugRegisterPair.ExecuteBreakpoint(0x800), 17).ToArray();
        Assert.Equal("Breakpoints", Assert.Throws<ArgumentOutOfRangeException>(() => new Arm64GuestDebugOptions { Breakpoints = seventeen }).ParamName);
        Assert.Equal("Watchpoints", Assert.Throws<ArgumentOutOfRangeException>(() => new Arm64GuestDebugOptions { Watchpoints = seventeen }).ParamName);
        var list = new List<Arm64DebugRegisterPair> { new(1, 1) };
        var options = new Arm64GuestDebugOptions { Breakpoints = list };
        list.Add(new(2, 2)); // copied when set: a later change of the caller's list does not reach the options
        Assert.Single(options.Breakpoints);
        Assert.Equal(new Arm64DebugRegisterPair(0x800, 0x1E7), Arm64DebugRegisterPair.ExecuteBreakpoint(0x800));
    }

    private static int Off<T>(string field) => (int)Marshal.OffsetOf<T>(field);
}
