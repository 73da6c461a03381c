// SPDX-License-Identifier: MIT
using KvmSharp.Vmm.Arch.Arm64;
using System.Runtime.InteropServices;
using KvmSharp.Abi;
using KvmSharp.Abi.Arm64;
using KvmSharp.Arm64;
using KvmSharp.Conformance.Guests.Arm64;
using KvmSharp.Emulation.Arm64;
using KvmSharp.Kernel;
using static KvmSharp.Abi.Arm64.KvmArm64Smccc;
using static KvmSharp.Vmm.Arch.Arm64.A64Register;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// The arm64 firmware interface (Emulation/Arm64/Smccc.cs, Arm64SmcccFilter.cs, Arm64PsciPower.cs, Arm64Trng.cs)
/// against arch/arm64/kvm/hypercalls.c kvm_smccc_call_handler / kvm_smccc_get_action / kvm_smccc_set_filter /
/// kvm_prepare_hypercall_exit, handle_exit.c handle_smc, trng.c and psci.c kvm_psci_vcpu_on / _off / _affinity_info
/// (6.18). Emulator-only: this host is x86.
/// </summary>
public class Arm64SmcccTests
{
    private const ulong NotSupported = ulong.MaxValue;
    private const ulong InvalidParams = unchecked((ulong)-2L);
    private const ulong AlreadyOn = unchecked((ulong)-4L);

    private sealed class Setup : Arm64TestVm
    {
        public Setup(Action<A64Assembler> program, int vcpus = 1, bool secondPoweredOff = false)
            : base(program)
        {
            for (int i = 0; i < vcpus; i++)
                AddVcpu(i == 1 && secondPoweredOff ? 1u << KvmArm64Constants.KVM_ARM_VCPU_POWER_OFF : 0);
        }

        /// <summary>KVM_SET/HAS_DEVICE_ATTR on the VM fd with a raw 24-byte filter (null: addr as given).</summary>
        public long VmAttr(uint request, uint group, ulong attribute, byte[]? filter, ulong addr = 0)
        {
            GCHandle pin = filter is null ? default : GCHandle.Alloc(filter, GCHandleType.Pinned);
            try
            {
                var attr = new kvm_device_attr { group = group, attr = attribute, addr = filter is null ? addr : (ulong)pin.AddrOfPinnedObject() };
                return Kernel.Ioctl(Vm.Handle, request, Raw.Bytes(ref attr));
            }
            finally
            {
                if (filter is not null) pin.Free();
            }
        }
    }

    private static byte[] Filter(uint @base, uint nr, byte action, int padByte = -1)
    {
        byte[] f = new byte[24];
        BitConverter.TryWriteBytes(f.AsSpan(0), @base);
        BitConverter.TryWriteBytes(f.AsSpan(4), nr);
        f[8] = action;
        if (padByte >= 0) f[9 + padByte] = 1;
        return f;
    }

    /// <summary>x0 = <paramref name="fn"/>, x1 = <paramref name="arg1"/>, HVC #0 (or SMC #imm), then x<paramref name="save"/> = x0.</summary>
    private static void Call(A64Assembler a, ulong fn, ulong arg1, int save, bool smc = false, ushort imm = 0)
    {
        a.MovImm(X(0), fn);
        a.MovImm(X(1), arg1);
        if (smc) a.Emit(0xD400_0003 | ((uint)imm << 5));
        else a.Hvc(imm);
        a.Mov(X(save), X(0));
    }

    private static void DiscoveryProgram(A64Assembler a)
    {
        Call(a, Smccc.ARM_SMCCC_VERSION_FUNC_ID, 0, 19);
        Call(a, Smccc.ARM_SMCCC_ARCH_FEATURES_FUNC_ID, Smccc.ARM_SMCCC_ARCH_WORKAROUND_1, 20);
        Call(a, Smccc.ARM_SMCCC_ARCH_FEATURES_FUNC_ID, Smccc.ARM_SMCCC_ARCH_WORKAROUND_2, 21);
        Call(a, Smccc.ARM_SMCCC_ARCH_FEATURES_FUNC_ID, Smccc.ARM_SMCCC_ARCH_WORKAROUND_3, 22);
        Call(a, Smccc.ARM_SMCCC_ARCH_FEATURES_FUNC_ID, 0x8000_0002, 23); // SOC_ID: not answered by KVM
        Call(a, Smccc.ARM_SMCCC_VENDOR_HYP_CALL_UID_FUNC_ID, 0, 24);
        a.Mov(X(25), X(1));
        a.Mov(X(26), X(3));
        Call(a, Smccc.ARM_SMCCC_VENDOR_HYP_KVM_FEATURES_FUNC_ID, 0, 27);
        Call(a, Arm64Trng.Version, 0, 28);
        Call(a, Smccc.ARM_SMCCC_ARCH_FEATURES_FUNC_ID, Arm64PvTime.PvTimeFeatures, 11);
        Call(a, Psci.PSCI_1_0_FN_PSCI_FEATURES, Psci.PSCI_0_2_FN64_CPU_ON, 12);
        Call(a, Psci.PSCI_1_0_FN_PSCI_FEATURES, Smccc.ARM_SMCCC_VERSION_FUNC_ID, 13);
        Arm64Guest.SystemOff(a);
    }

    /// <summary>ARCH_FEATURES(WORKAROUND_n) from the level KVM_REG_ARM_SMCCC_ARCH_WORKAROUND_n reports (same host state).</summary>
    private static ulong ExpectedWorkaround(int n, ulong level) => (n, level) switch
    {
        (2, 3) => unchecked((ulong)-2L), // NOT_REQUIRED → SMCCC_RET_NOT_REQUIRED
        (2, _) => NotSupported,
        (_, 1) => 0, // AVAIL → SMCCC_RET_SUCCESS
        (_, 2) => 1, // NOT_REQUIRED → SMCCC_ARCH_WORKAROUND_RET_UNAFFECTED
        _ => NotSupported,
    };

    [Fact]
    public void Discovery_answers_version_workarounds_vendor_uid_features_and_trng()
    {
        using var s = new Setup(DiscoveryProgram);
        var v = s.Vcpus[0];
        Assert.Equal(KvmExitReason.KVM_EXIT_SYSTEM_EVENT, v.RunBounded().Reason);
        Assert.Equal(0x1_0001UL, v.GetX(19));
        Assert.Equal(ExpectedWorkaround(1, v.GetOneReg(KvmArm64FwRegs.KVM_REG_ARM_SMCCC_ARCH_WORKAROUND_1)), v.GetX(20));
        Assert.Equal(ExpectedWorkaround(2, v.GetOneReg(KvmArm64FwRegs.KVM_REG_ARM_SMCCC_ARCH_WORKAROUND_2)), v.GetX(21));
        Assert.Equal(ExpectedWorkaround(3, v.GetOneReg(KvmArm64FwRegs.KVM_REG_ARM_SMCCC_ARCH_WORKAROUND_3)), v.GetX(22));
        Assert.Equal(NotSupported, v.GetX(23));
        // ARM_SMCCC_VENDOR_HYP_UID_KVM_REG_0..3 (28b46fb6-2ec5-11e9-a9ca-4b564d003a74).
        Assert.Equal(0xb66f_b428UL, v.GetX(24));
        Assert.Equal(0xe911_c52eUL, v.GetX(25));
        Assert.Equal(0x743a_004dUL, v.GetX(26));
        // KVM_FEATURES: vendor_hyp_bmap (FUNC_FEAT | PTP by default).
        Assert.Equal(3UL, v.GetX(27));
        Assert.Equal(0x1_0000UL, v.GetX(28));
        Assert.Equal(0UL, v.GetX(11));
        Assert.Equal(0UL, v.GetX(12));
        Assert.Equal(0UL, v.GetX(13));
    }

    [Fact]
    public void A_call_whose_bitmap_bit_is_cleared_is_not_supported_but_smccc_version_stays()
    {
        using var s = new Setup(DiscoveryProgram);
        var v = s.Vcpus[0];
        v.SetOneReg(KvmArm64FwRegs.KVM_REG_ARM_VENDOR_HYP_BMAP, 0);
        v.SetOneReg(KvmArm64FwRegs.KVM_REG_ARM_STD_BMAP, 0);
        v.SetOneReg(KvmArm64FwRegs.KVM_REG_ARM_STD_HYP_BMAP, 0);
        Assert.Equal(KvmExitReason.KVM_EXIT_SYSTEM_EVENT, v.RunBounded().Reason);
        // kvm_smccc_default_allowed: SMCCC_VERSION / ARCH_FEATURES and PSCI are never gated.
        Assert.Equal(0x1_0001UL, v.GetX(19));
        Assert.Equal(0UL, v.GetX(12));
        // kvm_smccc_get_action → DENY: UID, KVM_FEATURES and TRNG answer NOT_SUPPORTED (x1..x3 zeroed).
        Assert.Equal(NotSupported, v.GetX(24));
        Assert.Equal(0UL, v.GetX(25));
        Assert.Equal(NotSupported, v.GetX(27));
        Assert.Equal(NotSupported, v.GetX(28));
        // ARCH_FEATURES(PV_TIME_FEATURES) follows the PV_TIME bit.
        Assert.Equal(NotSupported, v.GetX(11));
    }

    [Fact]
    public void Ptp_returns_realtime_and_the_counter_split_in_32_bit_halves()
    {
        using var s = new Setup(a =>
        {
            Call(a, Smccc.ARM_SMCCC_VENDOR_HYP_KVM_PTP_FUNC_ID, 1, 19);
            a.Mov(X(20), X(1));
            a.Mov(X(21), X(2));
            a.Mov(X(22), X(3));
            Call(a, Smccc.ARM_SMCCC_VENDOR_HYP_KVM_PTP_FUNC_ID, 2, 23);
            Arm64Guest.SystemOff(a);
        });
        var v = s.Vcpus[0];
        ulong before = (ulong)(DateTime.UtcNow - DateTime.UnixEpoch).Ticks * 100;
        Assert.Equal(KvmExitReason.KVM_EXIT_SYSTEM_EVENT, v.RunBounded().Reason);
        ulong after = (ulong)(DateTime.UtcNow - DateTime.UnixEpoch).Ticks * 100;
        // KVM_PTP_PHYS_COUNTER: x0:x1 = CLOCK_REALTIME ns, x2:x3 = the physical counter (poffset 0).
        Assert.InRange((v.GetX(19) << 32) | v.GetX(20), before, after);
        Assert.True(((v.GetX(21) << 32) | v.GetX(22)) > 0);
        Assert.True(v.GetX(20) <= 0xffff_ffff && v.GetX(22) <= 0xffff_ffff);
        // An unknown counter id: val[] stays { NOT_SUPPORTED, 0, 0, 0 }.
        Assert.Equal(NotSupported, v.GetX(23));
    }

    [Fact]
    public void Trng_returns_uuid_and_only_the_requested_number_of_random_bits()
    {
        using var s = new Setup(a =>
        {
            Call(a, Arm64Trng.GetUuid, 0, 19);
            a.Mov(X(20), X(3));
            Call(a, Arm64Trng.Rnd64, 8, 21);
            a.Mov(X(22), X(1));
            a.Mov(X(23), X(2));
            a.Mov(X(24), X(3));
            Call(a, Arm64Trng.Rnd32, 97, 25);
            Call(a, Arm64Trng.Features, Arm64Trng.Rnd64, 26);
            Call(a, Arm64Trng.Features, 0x8400_0054, 27);
            Arm64Guest.SystemOff(a);
        });
        var v = s.Vcpus[0];
        Assert.Equal(KvmExitReason.KVM_EXIT_SYSTEM_EVENT, v.RunBounded().Reason);
        Assert.Equal(0x00e0_210dUL, v.GetX(19));
        Assert.Equal(0x1d9f_9d10UL, v.GetX(20));
        // RND64 of 8 bits: TRNG_SUCCESS, x3 = bits[0] with everything above bit 7 cleared, x1/x2 zero.
        Assert.Equal(0UL, v.GetX(21));
        Assert.Equal(0UL, v.GetX(22));
        Assert.Equal(0UL, v.GetX(23));
        Assert.Equal(0UL, v.GetX(24) & ~0xffUL);
        // "if (num_bits > 3 * size)": TRNG_INVALID_PARAMETER.
        Assert.Equal(InvalidParams, v.GetX(25));
        Assert.Equal(0UL, v.GetX(26));
        Assert.Equal(NotSupported, v.GetX(27));
    }

    [Fact]
    public void Smc_is_handled_like_hvc_and_a_nonzero_immediate_answers_minus_one()
    {
        using var s = new Setup(a =>
        {
            Call(a, Smccc.ARM_SMCCC_VERSION_FUNC_ID, 0, 19, smc: true);
            // SMC #1 with SYSTEM_OFF in w0: reserved immediate → x0 = ~0, the call is not made.
            Call(a, Psci.PSCI_0_2_FN_SYSTEM_OFF, 0, 20, smc: true, imm: 1);
            Call(a, Psci.PSCI_0_2_FN_PSCI_VERSION, 0, 21, smc: true);
            Arm64Guest.SystemOff(a);
        });
        var v = s.Vcpus[0];
        Assert.Equal(KvmExitReason.KVM_EXIT_SYSTEM_EVENT, v.RunBounded().Reason);
        Assert.Equal(0x1_0001UL, v.GetX(19));
        Assert.Equal(NotSupported, v.GetX(20));
        Assert.Equal(KvmArm64FwRegs.KVM_ARM_PSCI_1_1, v.GetX(21));
    }

    [Fact]
    public void Filter_attribute_rules_follow_kvm_smccc_set_filter()
    {
        using var s = new Setup(Arm64Guest.SystemOff);
        uint Set = KvmIoctls.KVM_SET_DEVICE_ATTR;
        Assert.True(s.Vm.HasSmcccFilter());
        Assert.Equal(0, s.VmAttr(KvmIoctls.KVM_HAS_DEVICE_ATTR, KVM_ARM_VM_SMCCC_CTRL, KVM_ARM_VM_SMCCC_FILTER, null));
        Assert.Equal(-(long)Errno.ENXIO, s.VmAttr(KvmIoctls.KVM_HAS_DEVICE_ATTR, KVM_ARM_VM_SMCCC_CTRL, 1, null));
        Assert.Equal(-(long)Errno.ENXIO, s.VmAttr(KvmIoctls.KVM_HAS_DEVICE_ATTR, 1, KVM_ARM_VM_SMCCC_FILTER, null));
        Assert.Equal(-(long)Errno.ENXIO, s.VmAttr(Set, KVM_ARM_VM_SMCCC_CTRL, 1, Filter(0x8600_0000, 1, 1)));
        Assert.Equal(Raw.EINVAL, s.VmAttr(KvmIoctls.KVM_GET_DEVICE_ATTR, KVM_ARM_VM_SMCCC_CTRL, KVM_ARM_VM_SMCCC_FILTER, Filter(0, 0, 0)));
        Assert.Equal(Raw.EFAULT, s.VmAttr(Set, KVM_ARM_VM_SMCCC_CTRL, KVM_ARM_VM_SMCCC_FILTER, null, 8));
        // pad, an empty or wrapping range, an unknown action: EINVAL.
        Assert.Equal(Raw.EINVAL, s.VmAttr(Set, KVM_ARM_VM_SMCCC_CTRL, KVM_ARM_VM_SMCCC_FILTER, Filter(0x8600_0000, 1, 1, padByte: 14)));
        Assert.Equal(Raw.EINVAL, s.VmAttr(Set, KVM_ARM_VM_SMCCC_CTRL, KVM_ARM_VM_SMCCC_FILTER, Filter(0x8600_0000, 0, 1)));
        Assert.Equal(Raw.EINVAL, s.VmAttr(Set, KVM_ARM_VM_SMCCC_CTRL, KVM_ARM_VM_SMCCC_FILTER, Filter(0xFFFF_FFFF, 2, 1)));
        Assert.Equal(Raw.EINVAL, s.VmAttr(Set, KVM_ARM_VM_SMCCC_CTRL, KVM_ARM_VM_SMCCC_FILTER, Filter(0x8600_0000, 1, 3)));
        // The SMCCC arch ranges are reserved (inserted as HANDLE with the first filter): EEXIST.
        Assert.Equal(Errno.EEXIST, Assert.Throws<KvmException>(() => s.Vm.SetSmcccFilter(0x8000_0000, 1, SmcccFilterAction.Deny)).Errno);
        Assert.Equal(Errno.EEXIST, Assert.Throws<KvmException>(() => s.Vm.SetSmcccFilter(0xC000_FFFF, 2, SmcccFilterAction.ForwardToUser)).Errno);
        s.Vm.SetSmcccFilter(0x8600_0000, 0x100, SmcccFilterAction.Deny);
        s.Vm.SetSmcccFilter(0x8600_0100, 1, SmcccFilterAction.ForwardToUser);
        Assert.Equal(Errno.EEXIST, Assert.Throws<KvmException>(() => s.Vm.SetSmcccFilter(0x8600_00FF, 2, SmcccFilterAction.Handle)).Errno);
        // After the VM ran: EBUSY.
        Assert.Equal(KvmExitReason.KVM_EXIT_SYSTEM_EVENT, s.Vcpus[0].RunBounded().Reason);
        Assert.Equal(Errno.EBUSY, Assert.Throws<KvmException>(() => s.Vm.SetSmcccFilter(0x8700_0000, 1, SmcccFilterAction.Deny)).Errno);
    }

    [Fact]
    public void Deny_answers_not_supported_and_forward_exits_with_the_function_id_and_conduit()
    {
        using var s = new Setup(a =>
        {
            Call(a, Psci.PSCI_0_2_FN_PSCI_VERSION, 0, 19);
            Call(a, 0x8600_0002, 0x1234, 20);
            a.Mov(X(21), X(1));
            Call(a, 0xC600_0003, 0, 22, smc: true);
            Arm64Guest.SystemOff(a);
        });
        var v = s.Vcpus[0];
        s.Vm.SetSmcccFilter(Psci.PSCI_0_2_FN_PSCI_VERSION, 1, SmcccFilterAction.Deny);
        s.Vm.SetSmcccFilter(0x8600_0002, 1, SmcccFilterAction.ForwardToUser);
        s.Vm.SetSmcccFilter(0xC600_0000, 0x10, SmcccFilterAction.ForwardToUser);

        var exit = v.RunBounded();
        Assert.True(exit.TryGetSmcccCall(out var call));
        Assert.Equal(new SmcccCall(0x8600_0002, false, false), call);
        Assert.Equal(0UL, exit.HypercallArgs[0]);
        // The PC is already past the HVC: the VMM reads the arguments and writes x0..x3.
        Assert.Equal(0x1234UL, v.GetX(1));
        Assert.Equal(0xD400_0002u, s.Host.Read<uint>(v.GetPc() - 4));
        v.CompleteSmcccCall(0x77, 0x88);

        exit = v.RunBounded();
        Assert.True(exit.TryGetSmcccCall(out call));
        Assert.Equal(new SmcccCall(0xC600_0003, true, false), call);
        Assert.Equal(0xD400_0003u, s.Host.Read<uint>(v.GetPc() - 4));
        v.CompleteSmcccCall(0x99);

        exit = v.RunBounded();
        Assert.False(exit.TryGetSmcccCall(out _));
        Assert.Equal(KvmExitReason.KVM_EXIT_SYSTEM_EVENT, exit.Reason);
        Assert.Equal(NotSupported, v.GetX(19));
        Assert.Equal(0x77UL, v.GetX(20));
        Assert.Equal(0x88UL, v.GetX(21));
        Assert.Equal(0x99UL, v.GetX(22));
    }

    [Fact]
    public void Cpu_on_off_and_affinity_info_drive_a_powered_off_vcpu()
    {
        const ulong AffinityInfo = Psci.PSCI_0_2_FN64_AFFINITY_INFO, CpuOn = Psci.PSCI_0_2_FN64_CPU_ON;
        int entry = 0;
        using var s = new Setup(a =>
        {
            var secondary = a.CreateLabel();
            var poll = a.CreateLabel();
            // vCPU 0, part 1.
            Call(a, AffinityInfo, 1, 19);
            a.MovImm(X(2), Arm64Guest.CodeGpa + 0x400);
            a.MovImm(X(3), 0x55);
            Call(a, CpuOn, 1, 20);
            a.MovImm(X(2), Arm64Guest.CodeGpa + 0x400);
            Call(a, CpuOn, 1, 21);
            Call(a, CpuOn, 7, 22);
            Call(a, CpuOn, 1UL << 24, 23);
            a.MovImm(X(2), 0);
            Call(a, AffinityInfo, 1, 24);
            a.MovImm(X(2), 4);
            Call(a, AffinityInfo, 1, 25);
            Arm64Guest.Ucall(a, 1);
            // vCPU 0, part 2: wait for vCPU 1 to be off, then turn it on again.
            a.Bind(poll);
            a.MovImm(X(2), 0);
            Call(a, AffinityInfo, 1, 26);
            a.CmpImm(X(0), 1);
            a.B(A64Condition.NE, poll);
            a.MovImm(X(2), Arm64Guest.CodeGpa + 0x400);
            a.MovImm(X(3), 0x66);
            Call(a, CpuOn, 1, 27);
            Arm64Guest.Ucall(a, 2);
            while (a.Position < 0x400) a.Nop();
            // vCPU 1's entry point: x19 = context id, ucall, CPU_OFF.
            a.Bind(secondary);
            entry = a.Position;
            a.Mov(X(19), X(0));
            Arm64Guest.Ucall(a, 3);
            Call(a, Psci.PSCI_0_2_FN_CPU_OFF, 0, 20);
            a.B(secondary);
        }, vcpus: 2, secondPoweredOff: true);
        Assert.Equal(0x400, entry);
        var (v0, v1) = (s.Vcpus[0], s.Vcpus[1]);
        // KVM_ARM_VCPU_POWER_OFF: mp_state STOPPED.
        Assert.Equal(KvmMpState.KVM_MP_STATE_STOPPED, v1.GetMpState());

        Assert.Equal(KvmExitReason.KVM_EXIT_MMIO, v0.RunBounded().Reason);
        Assert.Equal(1UL, v0.GetX(19));           // AFFINITY_LEVEL_OFF
        Assert.Equal(0UL, v0.GetX(20));           // CPU_ON: SUCCESS
        Assert.Equal(AlreadyOn, v0.GetX(21));     // the target is no longer STOPPED
        Assert.Equal(InvalidParams, v0.GetX(22)); // no vCPU with that MPIDR
        Assert.Equal(InvalidParams, v0.GetX(23)); // bits outside MPIDR_HWID_BITMASK
        Assert.Equal(0UL, v0.GetX(24));           // AFFINITY_LEVEL_ON
        Assert.Equal(InvalidParams, v0.GetX(25)); // lowest affinity level above 3
        Assert.Equal(KvmMpState.KVM_MP_STATE_RUNNABLE, v1.GetMpState());

        // The reset request applies at vCPU 1's next KVM_RUN: PC = entry, x0 = context id.
        Assert.Equal(KvmExitReason.KVM_EXIT_MMIO, v1.RunBounded().Reason);
        Assert.Equal(0x55UL, v1.GetX(19));

        // vCPU 1 turns itself off and sleeps in KVM_RUN until vCPU 0's CPU_ON wakes it.
        KvmExitReason secondReason = default;
        var second = new Thread(() => secondReason = v1.RunBounded().Reason) { IsBackground = true };
        second.Start();
        Assert.Equal(KvmExitReason.KVM_EXIT_MMIO, v0.RunBounded().Reason);
        Assert.Equal(1UL, v0.GetX(26));
        Assert.Equal(0UL, v0.GetX(27));
        Assert.True(second.Join(TimeSpan.FromMinutes(2)));
        Assert.Equal(KvmExitReason.KVM_EXIT_MMIO, secondReason);
        Assert.Equal(0x66UL, v1.GetX(19));
        Assert.InRange(v1.GetPc(), Arm64Guest.CodeGpa + 0x404, Arm64Guest.CodeGpa + 0x420); // stopped at the ucall store
    }

    [Fact]
    public void Mp_state_can_be_set_to_stopped_and_runnable_only()
    {
        using var s = new Setup(Arm64Guest.SystemOff);
        var v = s.Vcpus[0];
        Assert.Equal(KvmMpState.KVM_MP_STATE_RUNNABLE, v.GetMpState());
        v.SetMpState(KvmMpState.KVM_MP_STATE_STOPPED);
        Assert.Equal(KvmMpState.KVM_MP_STATE_STOPPED, v.GetMpState());
        Assert.Equal(Errno.EINVAL, Assert.Throws<KvmException>(() => v.SetMpState(KvmMpState.KVM_MP_STATE_HALTED)).Errno);
        Assert.Equal(KvmMpState.KVM_MP_STATE_STOPPED, v.GetMpState());
        v.SetMpState(KvmMpState.KVM_MP_STATE_RUNNABLE);
        Assert.Equal(KvmMpState.KVM_MP_STATE_RUNNABLE, v.GetMpState());
    }
}
