// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using KvmSharp.Abi.Arm64;
using static KvmSharp.Abi.Arm64.KvmArm64Sve;

namespace KvmSharp.Emulation.Arm64;

/// <summary>
/// SVE vCPUs as userspace sees them (Linux 6.18, arch/arm64/kvm; Documentation/virt/kvm/api.rst KVM_ARM_VCPU_INIT
/// "KVM_ARM_VCPU_SVE" and KVM_ARM_VCPU_FINALIZE): the feature exists only on a host with SVE
/// (<see cref="Arm64CpuModel.HasSve"/>: arm.c system_supported_vcpu_features, KVM_CAP_ARM_SVE); reset.c
/// kvm_vcpu_enable_sve at KVM_ARM_VCPU_INIT (sve_max_vl = kvm_sve_max_vl until finalized); guest.c get/set_sve_vls
/// (the KVM_REG_ARM64_SVE_VLS bitmap), sve_reg_to_region and get/set_sve_reg (Z0..Z31, P0..P15, FFR, slice 0 only),
/// copy_sve_reg_indices; reset.c kvm_arm_vcpu_finalize / kvm_vcpu_finalize_sve and kvm_arm_vcpu_is_finalized. ZCR_EL1
/// (sys_regs.c, sve_visibility) is a plain register of an SVE vCPU; its LEN field sets the vector length the A64
/// interpreter's SVE instructions (A64Interpreter.Sve.cs, .SveMemoryFp.cs) run at, capped by sve_max_vl.
/// </summary>
internal static class Arm64Sve
{
    public const uint Feature = 1u << KvmArm64Constants.KVM_ARM_VCPU_SVE;

    /// <summary>KVM_REG_SIZE(KVM_REG_ARM64_SVE_ZREG(0, 0)) and (…_PREG(0, 0)): what userspace transfers per slice.</summary>
    public const int ZregSize = 256, PregSize = 32;

    /// <summary>KVM_REG_SIZE(KVM_REG_ARM64_SVE_VLS): KVM_ARM64_SVE_VLS_WORDS __u64 words.</summary>
    public const int VlsSize = KVM_ARM64_SVE_VLS_WORDS * sizeof(ulong);

    /// <summary>system_supported_vcpu_features: "if (!system_supports_sve()) clear_bit(KVM_ARM_VCPU_SVE, &amp;features)".</summary>
    public static uint SupportedFeatures(Arm64CpuModel model) => model.HasSve ? Feature : 0;

    /// <summary>
    /// kvm_reset_vcpu at KVM_ARM_VCPU_INIT: "if (!kvm_arm_vcpu_sve_finalized(vcpu)) { if (vcpu_has_feature(vcpu,
    /// KVM_ARM_VCPU_SVE)) kvm_vcpu_enable_sve(vcpu); }" — sve_max_vl = kvm_sve_max_vl (a re-init before finalization
    /// undoes a KVM_REG_ARM64_SVE_VLS write); a finalized vCPU's state is zeroed by the reset (Arm64Cpu.Reset).
    /// </summary>
    public static void InitVcpu(Arm64Cpu cpu, uint features)
    {
        if ((features & Feature) == 0) return;
        int maxVq = cpu.IdRegs.Model.SveMaxVq;
        if (cpu.Sve is null) cpu.Sve = new Arm64SveState(maxVq);
        else if (!cpu.Sve.Finalized) cpu.Sve.MaxVq = maxVq;
    }

    /// <summary>The first KVM_ARM_VCPU_INIT of an SVE VM: KVM_ARCH_FLAG_GUEST_HAS_SVE, seen by the ID registers.</summary>
    public static void InitVm(Arm64VmState vm)
    {
        lock (vm.IdRegs) vm.IdRegs.EnableSve();
    }

    /// <summary>kvm_arm_vcpu_is_finalized: "if (vcpu_has_sve(vcpu) &amp;&amp; !kvm_arm_vcpu_sve_finalized(vcpu)) return false".</summary>
    public static bool IsFinalized(Arm64Cpu cpu) => cpu.Sve is not { Finalized: false };

    /// <summary>
    /// reset.c kvm_arm_vcpu_finalize: KVM_ARM_VCPU_SVE → "if (!vcpu_has_sve(vcpu)) return -EINVAL; if
    /// (kvm_arm_vcpu_sve_finalized(vcpu)) return -EPERM; return kvm_vcpu_finalize_sve(vcpu)" (allocates sve_state for
    /// sve_max_vl, zeroed); any other feature → -EINVAL.
    /// </summary>
    public static long Finalize(Arm64Cpu cpu, int what)
    {
        if (what != KvmArm64Constants.KVM_ARM_VCPU_SVE) return Vfs.Err.EINVAL;
        if (cpu.Sve is null) return Vfs.Err.EINVAL;
        if (cpu.Sve.Finalized) return Vfs.Err.EPERM;
        cpu.Sve.FinalizeState();
        return 0;
    }

    /// <summary>kvm_arm_get_reg / kvm_arm_set_reg: "case KVM_REG_ARM64_SVE:" (after the upper-32-bits check).</summary>
    public static bool IsSveId(ulong id) => (id & KvmArm64Regs.KVM_REG_ARM_COPROC_MASK) == KVM_REG_ARM64_SVE;

    /// <summary>
    /// get_sve_reg: KVM_REG_ARM64_SVE_VLS → get_sve_vls; else sve_reg_to_region (-ENOENT / -EINVAL), "if
    /// (!kvm_arm_vcpu_sve_finalized(vcpu)) return -EPERM", then klen bytes of the register and upad zero bytes.
    /// <paramref name="value"/> holds at least <see cref="ZregSize"/> bytes.
    /// </summary>
    public static long Get(Arm64Cpu cpu, ulong id, Span<byte> value, out int size)
    {
        size = 0;
        if (id == KVM_REG_ARM64_SVE_VLS) return GetVls(cpu, value, out size);
        long r = RegionOf(cpu, id, out bool zreg, out int n, out int reqlen);
        if (r != 0) return r;
        var sve = cpu.Sve!;
        if (!sve.Finalized) return Vfs.Err.EPERM;
        size = reqlen;
        value[..reqlen].Clear();
        if (zreg) sve.ReadZ(cpu, n, value[..sve.Vl]);
        else sve.Preg(n).CopyTo(value);
        return 0;
    }

    /// <summary>
    /// set_sve_reg: KVM_REG_ARM64_SVE_VLS → set_sve_vls; else sve_reg_to_region, -EPERM before finalization, then
    /// copy_from_user of klen bytes (EFAULT); the padding userspace passes beyond the vector length is not read.
    /// </summary>
    public static long Set(Arm64Cpu cpu, ulong id, Func<int, byte[]?> copyFromUser)
    {
        if (id == KVM_REG_ARM64_SVE_VLS) return SetVls(cpu, copyFromUser);
        long r = RegionOf(cpu, id, out bool zreg, out int n, out _);
        if (r != 0) return r;
        var sve = cpu.Sve!;
        if (!sve.Finalized) return Vfs.Err.EPERM;
        byte[]? bytes = copyFromUser(zreg ? sve.Vl : sve.PregBytes);
        if (bytes is null) return Vfs.Err.EFAULT;
        if (zreg) sve.WriteZ(cpu, n, bytes);
        else bytes.CopyTo(sve.Preg(n));
        return 0;
    }

    /// <summary>
    /// sve_reg_to_region: Z ids in [ZREG(0, 0), ZREG(31, 31)], P and FFR ids (contiguous) in [PREG(0, 0), FFR(31)]:
    /// "if (!vcpu_has_sve(vcpu) || (reg->id &amp; SVE_REG_SLICE_MASK) &gt; 0) return -ENOENT"; any other id (another
    /// size, another offset) → -EINVAL. reg_num = id bits 9:5 (FFR's is 16, the slot after P15). klen = min(the
    /// register's size at sve_max_vl, reqlen), so klen ≤ reqlen always (vector lengths stop at 2048 bits).
    /// </summary>
    private static long RegionOf(Arm64Cpu cpu, ulong id, out bool zreg, out int n, out int reqlen)
    {
        n = (int)((id >> 5) & 31);
        zreg = id >= KVM_REG_ARM64_SVE_ZREG(0, 0) && id <= KVM_REG_ARM64_SVE_ZREG(KVM_ARM64_SVE_NUM_ZREGS - 1, KVM_ARM64_SVE_MAX_SLICES - 1);
        bool preg = id >= KVM_REG_ARM64_SVE_PREG(0, 0) && id <= KVM_REG_ARM64_SVE_FFR(KVM_ARM64_SVE_MAX_SLICES - 1);
        reqlen = zreg ? ZregSize : PregSize;
        if (!zreg && !preg) return Vfs.Err.EINVAL;
        if (cpu.Sve is null || (id & (KVM_ARM64_SVE_MAX_SLICES - 1)) != 0) return Vfs.Err.ENOENT;
        return 0;
    }

    /// <summary>
    /// get_sve_vls: "if (!vcpu_has_sve(vcpu)) return -ENOENT"; the bit of every vq from 1 to vcpu_sve_max_vq the host
    /// implements (sve_vq_available), in the KVM_ARM64_SVE_VLS_WORDS-word bitmap (vq_word / vq_mask).
    /// </summary>
    private static long GetVls(Arm64Cpu cpu, Span<byte> value, out int size)
    {
        size = 0;
        if (cpu.Sve is not { } sve) return Vfs.Err.ENOENT;
        size = VlsSize;
        var words = new ulong[KVM_ARM64_SVE_VLS_WORDS];
        for (int vq = KVM_ARM64_SVE_VQ_MIN; vq <= sve.MaxVq; vq++)
        {
            if (cpu.IdRegs.Model.SveVqAvailable(vq)) words[(vq - KVM_ARM64_SVE_VQ_MIN) / 64] |= 1UL << ((vq - KVM_ARM64_SVE_VQ_MIN) % 64);
        }
        for (int i = 0; i < words.Length; i++) BinaryPrimitives.WriteUInt64LittleEndian(value[(i * 8)..], words[i]);
        return 0;
    }

    /// <summary>
    /// set_sve_vls: -ENOENT without SVE; "if (kvm_arm_vcpu_sve_finalized(vcpu)) return -EPERM; /* too late! */";
    /// copy_from_user (EFAULT); max_vq = the highest vq set; "if (max_vq &gt; sve_vq_from_vl(kvm_sve_max_vl)) return
    /// -EINVAL"; every vq up to max_vq must be set exactly when the host implements it ("Vector lengths supported by
    /// the host can't currently be hidden from the guest individually", -EINVAL); "Can't run with no vector lengths
    /// at all" (-EINVAL); then sve_max_vl = sve_vl_from_vq(max_vq).
    /// </summary>
    private static long SetVls(Arm64Cpu cpu, Func<int, byte[]?> copyFromUser)
    {
        if (cpu.Sve is not { } sve) return Vfs.Err.ENOENT;
        if (sve.Finalized) return Vfs.Err.EPERM;
        byte[]? bytes = copyFromUser(VlsSize);
        if (bytes is null) return Vfs.Err.EFAULT;
        bool Present(int vq) =>
            (BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan((vq - KVM_ARM64_SVE_VQ_MIN) / 64 * 8)) >> ((vq - KVM_ARM64_SVE_VQ_MIN) % 64) & 1) != 0;
        int maxVq = 0;
        for (int vq = KVM_ARM64_SVE_VQ_MIN; vq <= KVM_ARM64_SVE_VQ_MAX; vq++)
        {
            if (Present(vq)) maxVq = vq;
        }
        var model = cpu.IdRegs.Model;
        if (maxVq > model.SveMaxVq) return Vfs.Err.EINVAL;
        for (int vq = KVM_ARM64_SVE_VQ_MIN; vq <= maxVq; vq++)
        {
            if (Present(vq) != model.SveVqAvailable(vq)) return Vfs.Err.EINVAL;
        }
        if (maxVq < KVM_ARM64_SVE_VQ_MIN) return Vfs.Err.EINVAL;
        sve.MaxVq = maxVq;
        return 0;
    }

    /// <summary>
    /// copy_sve_reg_indices (after the core registers): nothing without SVE; else KVM_REG_ARM64_SVE_VLS first ("so
    /// that userspace can save/restore in the order reported"), then for each slice (only slice 0) Z0..Z31, P0..P15
    /// and FFR.
    /// </summary>
    public static IEnumerable<ulong> Indices(Arm64Cpu cpu)
    {
        if (cpu.Sve is null) yield break;
        yield return KVM_REG_ARM64_SVE_VLS;
        for (int n = 0; n < KVM_ARM64_SVE_NUM_ZREGS; n++) yield return KVM_REG_ARM64_SVE_ZREG(n, 0);
        for (int n = 0; n < KVM_ARM64_SVE_NUM_PREGS; n++) yield return KVM_REG_ARM64_SVE_PREG(n, 0);
        yield return KVM_REG_ARM64_SVE_FFR(0);
    }

    /// <summary>
    /// sys_reg_descs[] "{ SYS_DESC(SYS_ZCR_EL1), NULL, reset_val, ZCR_EL1, 0, .visibility = sve_visibility }":
    /// REG_HIDDEN without SVE; with it the guest's accesses do not trap (a plain register to guest and userspace).
    /// </summary>
    public static IEnumerable<SysRegDesc> Descs()
    {
        yield return new SysRegDesc("ZCR_EL1", 3, 0, 1, 2, 0, SysRegReset.Value, 0, Sve: true);
    }
}

/// <summary>
/// vcpu->arch.sve_max_vl, the VCPU_SVE_FINALIZED flag and vcpu->arch.sve_state of an SVE vCPU. The Z registers' low
/// 128 bits are the FP/SIMD V registers (<see cref="Arm64Cpu.Vregs"/>, what the interpreter's SIMD instructions use);
/// only the bytes above them, the P registers and FFR are stored here, allocated for sve_max_vl at finalization.
/// </summary>
internal sealed class Arm64SveState(int maxVq)
{
    private byte[] _zHigh = [], _pregs = [];

    /// <summary>sve_vq_from_vl(vcpu->arch.sve_max_vl).</summary>
    public int MaxVq { get; set; } = maxVq;

    /// <summary>vcpu_get_flag(vcpu, VCPU_SVE_FINALIZED).</summary>
    public bool Finalized { get; private set; }

    /// <summary>The vector length in bytes (SVE_SIG_ZREG_SIZE(vq)).</summary>
    public int Vl => MaxVq * 16;

    /// <summary>SVE_SIG_PREG_SIZE(vq): a P register (and FFR) in bytes.</summary>
    public int PregBytes => MaxVq * 2;

    /// <summary>kvm_vcpu_finalize_sve: kzalloc(vcpu_sve_state_size(vcpu)), then the flag.</summary>
    public void FinalizeState()
    {
        _zHigh = new byte[32 * (Vl - 16)];
        _pregs = new byte[17 * PregBytes];
        Finalized = true;
    }

    /// <summary>kvm_vcpu_reset_sve's memset (the V registers are cleared with the FP/SIMD state).</summary>
    public void Clear()
    {
        Array.Clear(_zHigh);
        Array.Clear(_pregs);
    }

    /// <summary>P0..P15 (<paramref name="n"/> 0..15) and FFR (16), <see cref="PregBytes"/> bytes each.</summary>
    public Span<byte> Preg(int n) => _pregs.AsSpan(n * PregBytes, PregBytes);

    /// <summary>Zn's <see cref="Vl"/> bytes: Vn (little-endian) then the stored upper bytes.</summary>
    public void ReadZ(Arm64Cpu cpu, int n, Span<byte> dest)
    {
        BinaryPrimitives.WriteUInt128LittleEndian(dest, cpu.Vregs[n]);
        _zHigh.AsSpan(n * (Vl - 16), Vl - 16).CopyTo(dest[16..]);
    }

    public void WriteZ(Arm64Cpu cpu, int n, ReadOnlySpan<byte> src)
    {
        cpu.Vregs[n] = BinaryPrimitives.ReadUInt128LittleEndian(src);
        src.Slice(16, Vl - 16).CopyTo(_zHigh.AsSpan(n * (Vl - 16), Vl - 16));
    }
}
