// SPDX-License-Identifier: MIT
using System.Runtime.InteropServices;
using KvmSharp.Abi.Arm64;

namespace KvmSharp.Arm64;

/// <summary>
/// arm64 vCPU ioctls (arch/arm64/kvm/arm.c kvm_arch_vcpu_ioctl): KVM_ARM_VCPU_INIT and KVM_GET/SET_ONE_REG. A vCPU
/// must be initialized before it can run or expose registers (ENOEXEC otherwise).
/// </summary>
public static class Arm64Vcpu
{
    /// <summary>KVM_ARM_VCPU_INIT with <paramref name="target"/> and features[0] = <paramref name="features"/>.</summary>
    public static void Init(this Vcpu vcpu, uint target, uint features = 0)
    {
        var init = new kvm_vcpu_init { target = target };
        init.features[0] = features;
        vcpu.Init(init);
    }

    /// <summary>KVM_ARM_VCPU_INIT with a whole <see cref="kvm_vcpu_init"/>.</summary>
    public static void Init(this Vcpu vcpu, kvm_vcpu_init init)
    {
        ArgumentNullException.ThrowIfNull(vcpu);
        long rc = vcpu.Vm.Kernel.Ioctl(vcpu.Handle, KvmArm64Ioctls.KVM_ARM_VCPU_INIT, KvmCall.Bytes(ref init));
        if (KvmCall.IsError(rc))
            KvmCall.ThrowKvm(rc, "KVM_ARM_VCPU_INIT", $"vcpu={vcpu.Id} target={init.target} features[0]=0x{init.features[0]:X}");
        // Only an arm64 kernel knows KVM_ARM_VCPU_INIT: Vcpu.SetGuestDebug now sends arm64's struct kvm_guest_debug.
        vcpu.MarkArm64();
    }

    /// <summary>
    /// The vCPU set-up of tools/testing/selftests/kvm/lib/arm64/processor.c: KVM_ARM_PREFERRED_TARGET, then
    /// KVM_ARM_VCPU_INIT with PSCI 0.2 (so the guest can power the VM off through PSCI SYSTEM_OFF).
    /// </summary>
    public static void InitPreferred(this Vcpu vcpu)
    {
        ArgumentNullException.ThrowIfNull(vcpu);
        var init = vcpu.Vm.PreferredTarget();
        init.features[0] |= 1u << KvmArm64Constants.KVM_ARM_VCPU_PSCI_0_2;
        vcpu.Init(init);
    }

    /// <summary>KVM_GET_ONE_REG of a 64-bit register (KVM_REG_SIZE(id) must be 8).</summary>
    public static ulong GetOneReg(this Vcpu vcpu, ulong id)
    {
        ArgumentNullException.ThrowIfNull(vcpu);
        ulong[] value = GC.AllocateArray<ulong>(1, pinned: true);
        var reg = new kvm_one_reg { id = id, addr = (ulong)Marshal.UnsafeAddrOfPinnedArrayElement(value, 0) };
        long rc = vcpu.Vm.Kernel.Ioctl(vcpu.Handle, KvmArm64Ioctls.KVM_GET_ONE_REG, KvmCall.Bytes(ref reg));
        if (KvmCall.IsError(rc)) KvmCall.ThrowKvm(rc, "KVM_GET_ONE_REG", $"vcpu={vcpu.Id} id=0x{id:X}");
        GC.KeepAlive(value);
        return value[0];
    }

    /// <summary>KVM_SET_ONE_REG of a 64-bit register.</summary>
    public static void SetOneReg(this Vcpu vcpu, ulong id, ulong value)
    {
        ArgumentNullException.ThrowIfNull(vcpu);
        ulong[] buffer = GC.AllocateArray<ulong>(1, pinned: true);
        buffer[0] = value;
        var reg = new kvm_one_reg { id = id, addr = (ulong)Marshal.UnsafeAddrOfPinnedArrayElement(buffer, 0) };
        long rc = vcpu.Vm.Kernel.Ioctl(vcpu.Handle, KvmArm64Ioctls.KVM_SET_ONE_REG, KvmCall.Bytes(ref reg));
        GC.KeepAlive(buffer);
        if (KvmCall.IsError(rc)) KvmCall.ThrowKvm(rc, "KVM_SET_ONE_REG", $"vcpu={vcpu.Id} id=0x{id:X} value=0x{value:X}");
    }

    /// <summary>
    /// Every register id KVM_GET/SET_ONE_REG takes on this vCPU (KVM_GET_REG_LIST): core, SVE, firmware, timer and
    /// system registers on a real kernel — what a VMM saves for a snapshot. Asks for the count first (E2BIG), then
    /// the ids.
    /// </summary>
    /// <exception cref="KvmSharp.Kernel.KvmException">KVM_GET_REG_LIST failed (ENOEXEC before KVM_ARM_VCPU_INIT,
    /// EPERM before KVM_ARM_VCPU_FINALIZE of a vCPU with SVE).</exception>
    public static ulong[] GetRegisterList(this Vcpu vcpu)
    {
        ArgumentNullException.ThrowIfNull(vcpu);
        byte[] header = new byte[sizeof(ulong)];
        long rc = vcpu.Vm.Kernel.Ioctl(vcpu.Handle, KvmArm64Ioctls.KVM_GET_REG_LIST, header);
        if (rc == 0) return [];
        if (rc != -(long)KvmSharp.Kernel.Errno.E2BIG) KvmCall.ThrowKvm(rc, "KVM_GET_REG_LIST", $"vcpu={vcpu.Id} n=0");
        // The kernel wrote the count it needs; the list does not change for an initialized vCPU.
        ulong count = BitConverter.ToUInt64(header);
        byte[] list = new byte[checked((int)(count + 1) * sizeof(ulong))];
        BitConverter.TryWriteBytes(list, count);
        rc = vcpu.Vm.Kernel.Ioctl(vcpu.Handle, KvmArm64Ioctls.KVM_GET_REG_LIST, list);
        if (KvmCall.IsError(rc)) KvmCall.ThrowKvm(rc, "KVM_GET_REG_LIST", $"vcpu={vcpu.Id} n={count}");
        return MemoryMarshal.Cast<byte, ulong>(list.AsSpan(sizeof(ulong))).ToArray();
    }

    /// <summary>x0..x30 (<paramref name="n"/> = 0..30).</summary>
    public static ulong GetX(this Vcpu vcpu, int n) => vcpu.GetOneReg(KvmArm64Regs.X(n));

    /// <summary>Sets x0..x30 (<paramref name="n"/> = 0..30) with KVM_SET_ONE_REG.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="n"/> is outside 0..30.</exception>
    /// <exception cref="KvmSharp.Kernel.KvmException">KVM_SET_ONE_REG failed (ENOEXEC before
    /// KVM_ARM_VCPU_INIT).</exception>
    public static void SetX(this Vcpu vcpu, int n, ulong value) => vcpu.SetOneReg(KvmArm64Regs.X(n), value);

    /// <summary>The program counter (kvm_regs.regs.pc), read with KVM_GET_ONE_REG.</summary>
    /// <exception cref="KvmSharp.Kernel.KvmException">KVM_GET_ONE_REG failed (ENOEXEC before
    /// KVM_ARM_VCPU_INIT).</exception>
    public static ulong GetPc(this Vcpu vcpu) => vcpu.GetOneReg(KvmArm64Regs.Pc);

    /// <summary>
    /// Sets the program counter (kvm_regs.regs.pc) with KVM_SET_ONE_REG: where the guest resumes on the next run.
    /// </summary>
    /// <exception cref="KvmSharp.Kernel.KvmException">KVM_SET_ONE_REG failed (ENOEXEC before
    /// KVM_ARM_VCPU_INIT).</exception>
    public static void SetPc(this Vcpu vcpu, ulong value) => vcpu.SetOneReg(KvmArm64Regs.Pc, value);

    /// <summary>
    /// PSTATE (kvm_regs.regs.pstate: NZCV, DAIF, exception level, SP select), read with KVM_GET_ONE_REG.
    /// </summary>
    /// <exception cref="KvmSharp.Kernel.KvmException">KVM_GET_ONE_REG failed (ENOEXEC before
    /// KVM_ARM_VCPU_INIT).</exception>
    public static ulong GetPstate(this Vcpu vcpu) => vcpu.GetOneReg(KvmArm64Regs.Pstate);
}
