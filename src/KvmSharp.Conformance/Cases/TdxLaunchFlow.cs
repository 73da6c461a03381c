// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Kernel;
using KvmSharp.Memory;
using Xunit;

namespace KvmSharp.Conformance.Cases;

/// <summary>
/// The TDX launch flow a VMM drives (arch/x86/kvm/vmx/tdx.c tdx_vm_ioctl / tdx_vcpu_ioctl and tdx_vcpu_create,
/// tdx_vcpu_pre_run; Documentation/virt/kvm/x86/intel-tdx.rst): KVM_TDX_CAPABILITIES, INIT_VM, the vCPUs,
/// INIT_VCPU, INIT_MEM_REGION, FINALIZE_VM, GET_CPUID, with the ordering rules and their errno. This host has no TDX
/// (VM type 0 only): the cases run on the emulator's X86Coco profile, whose TDX module is a model, and are skipped here.
/// </summary>
public static class TdxLaunchFlow
{
    private const string Tdx = "arch/x86/kvm/vmx/tdx.c";
    private const ulong Gpa = 0x100000;

    /// <summary>Every TD vCPU of these cases is created here (tdx_vcpu_create's rules: after INIT_VM, a split irqchip).</summary>
    private static Vcpu CreateTdVcpu(Vm vm, int id = 0) => vm.CreateVcpu(id);

    /// <summary>
    /// Every TD of these cases is created here, with the split irqchip (KVM_CAP_SPLIT_IRQCHIP, 24 IOAPIC pins as QEMU)
    /// that tdx_vcpu_create requires ("TDX module mandates APICv, which requires an in-kernel local APIC").
    /// </summary>
    private static Vm CreateTd(Kvm kvm)
    {
        var vm = kvm.CreateVm(VmType.Tdx);
        vm.EnableSplitIrqchip(24);
        return vm;
    }

    /// <summary>A TD initialized with every configurable CPUID leaf and GPAW 48, as a VMM following the capabilities does.</summary>
    private static TdxLaunch InitTd(Vm vm, out TdxCapabilities caps)
    {
        var launch = new TdxLaunch(vm);
        caps = launch.GetCapabilities();
        launch.InitVm(caps.CpuidWithGpaw(48), attributes: caps.SupportedAttributes & TdxLaunch.AttributeSeptVeDisable);
        return launch;
    }

    /// <summary>KVM_SET_CPUID2 with the supported table (which offers x2APIC, as TDX requires before INIT_VCPU).</summary>
    private static void SetSupportedCpuid(Kvm kvm, Vcpu vcpu) => vcpu.SetCpuid(kvm.GetSupportedCpuid());

    [ConformanceCase(Tdx + " tdx_get_capabilities, tdx_td_init, tdx_vcpu_init, tdx_vcpu_init_mem_region, tdx_td_finalize, tdx_vcpu_get_cpuid: a TD's launch; capabilities list the configurable CPUID leaves (0x80000008.EAX[23:16] = 0xff, the GPAW knob) and only SetupEventNotifyInterrupt as a user TDVMCALL; GET_CPUID reports the GPAW chosen (48); KVM_RUN is EINVAL before FINALIZE_VM (tdx_vcpu_pre_run) and the vCPU's registers are protected from creation",
        Profile = EmulatedProfile.X86Coco, Requires = KernelRequirement.TdxVmType)]
    public static void td_launch_flow(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        if (!kvm.SupportsGuestMemfd) CaseContext.Skip("a TD's initial memory is guest_memfd, which this kernel lacks (KVM_CAP_GUEST_MEMFD = 0)");
        using var vm = CreateTd(kvm);
        var launch = InitTd(vm, out var caps);
        Assert.Contains(caps.ConfigurableCpuid, e => e.Function == 0x8000_0008 && (e.Eax >> 16 & 0xff) == 0xff);
        Assert.NotEqual(0UL, caps.SupportedXfam & 0x3);
        // Only SetupEventNotifyInterrupt (bit 1): GetQuote's bit 0 is base GHCI ("KVM: TDX: Don't report base TDVMCALLs").
        Assert.Equal(1UL << 1, caps.UserTdvmcallInfoR11);
        using var gmem = vm.CreateGuestMemfd(2 * 4096);
        using var slot = vm.AddGuestMemfdSlot(0, Gpa, 2 * 4096, gmem);
        vm.SetMemoryAttributes(Gpa, 2 * 4096, KvmConstants.KVM_MEMORY_ATTRIBUTE_PRIVATE);
        using var vcpu = CreateTdVcpu(vm);
        CaseContext.AssertErrno(Errno.EINVAL, () => vcpu.GetRegs());
        SetSupportedCpuid(kvm, vcpu);
        // INIT_MEM_REGION before INIT_VCPU: "tdx->state != VCPU_TD_STATE_INITIALIZED" → EINVAL.
        var image = new PinnedArray<byte>(4096, 4096);
        image.Span.Fill(0x66);
        AssertTdx(Errno.EINVAL, () => launch.InitMemRegion(vcpu, Gpa, (nint)image.Address, 1));
        launch.InitVcpu(vcpu, rcx: 0x1234);
        AssertTdx(Errno.EINVAL, () => launch.InitVcpu(vcpu));
        Assert.Equal(KvmMpState.KVM_MP_STATE_RUNNABLE, vcpu.GetMpState());
        var cpuid = launch.GetCpuid(vcpu);
        Assert.Equal(48u, cpuid.Single(e => e.Function == 0x8000_0008).Eax >> 16 & 0xff);
        launch.InitMemRegion(vcpu, Gpa, (nint)image.Address, 1);
        CaseContext.AssertErrno(Errno.EINVAL, () => { vcpu.Run(); });
        launch.FinalizeVm();
        // After FINALIZE_VM: the vCPU ioctls ("kvm_tdx->state == TD_STATE_RUNNABLE") and a second FINALIZE are EINVAL.
        AssertTdx(Errno.EINVAL, () => launch.InitMemRegion(vcpu, Gpa + 4096, (nint)image.Address, 1));
        AssertTdx(Errno.EINVAL, () => launch.GetCpuid(vcpu));
        AssertTdx(Errno.EINVAL, () => launch.FinalizeVm());
        AssertTdx(Errno.EINVAL, () => launch.InitVm(caps.CpuidWithGpaw(48)));
        // tdx_vcpu_create: only while TD_STATE_INITIALIZED.
        CaseContext.AssertErrno(Errno.EIO, () => CreateTdVcpu(vm, 1).Dispose());
    }

    [ConformanceCase(Tdx + " tdx_vcpu_create / tdx_td_init / setup_tdparams: a vCPU before KVM_TDX_INIT_VM is EIO; INIT_VM checks flags, the entry count (E2BIG above 256), the attributes and XFAM KVM supports, a CPUID.0x80000008 entry with GPAW 48 or 52, entries only for configurable leaves (EINVAL), no vCPU yet (EBUSY), and runs once (EINVAL); hw_error set by userspace is EINVAL; KVM_TDX_CAPABILITIES with too few entries is E2BIG; INIT_VCPU needs x2APIC in the guest CPUID",
        Profile = EmulatedProfile.X86Coco, Requires = KernelRequirement.TdxVmType)]
    public static void td_init_rules(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = CreateTd(kvm);
        var launch = new TdxLaunch(vm);
        CaseContext.AssertErrno(Errno.EIO, () => CreateTdVcpu(vm).Dispose());
        var caps = launch.GetCapabilities();
        var good = caps.CpuidWithGpaw(48);
        AssertTdx(Errno.EINVAL, () => launch.InitVm(good.Where(e => e.Function != 0x8000_0008).ToList()));
        AssertTdx(Errno.EINVAL, () => launch.InitVm(caps.CpuidWithGpaw(40)));
        AssertTdx(Errno.EINVAL, () => launch.InitVm([.. good, CpuidEntry.Leaf(0x4000_0000, 0, 0, 0, 0)]));
        AssertTdx(Errno.EINVAL, () => launch.InitVm(good, attributes: 1));
        AssertTdx(Errno.EINVAL, () => launch.InitVm(good, xfam: 1UL << 62));
        AssertTdx(Errno.E2BIG, () => launch.InitVm([.. Enumerable.Repeat(good[0], 257)]));
        // Raw: flags, hw_error, too few capability entries.
        var caps0 = new kvm_tdx_capabilities();
        var capsBuffer = Pin(ref caps0, 0);
        CaseContext.AssertErrno(Errno.E2BIG, Raw(ctx, vm, KvmMemoryEncrypt.KVM_TDX_CAPABILITIES, 0, capsBuffer.Address, 0), "capabilities, nent 0");
        CaseContext.AssertErrno(Errno.EINVAL, Raw(ctx, vm, KvmMemoryEncrypt.KVM_TDX_CAPABILITIES, 1, capsBuffer.Address, 0), "capabilities, flags");
        CaseContext.AssertErrno(Errno.EINVAL, Raw(ctx, vm, KvmMemoryEncrypt.KVM_TDX_INIT_VM, 0, capsBuffer.Address, 1), "hw_error set");
        CaseContext.AssertErrno(Errno.EINVAL, Raw(ctx, vm, KvmMemoryEncrypt.KVM_TDX_INIT_MEM_REGION, 0, 0, 0), "a vCPU command on the VM fd");
        launch.InitVm(good);
        AssertTdx(Errno.EINVAL, () => launch.InitVm(good));
        using var vcpu = CreateTdVcpu(vm);
        // No KVM_SET_CPUID2: X2APIC_ENABLE is a reserved APIC-base bit, kvm_apic_set_base fails → EINVAL.
        AssertTdx(Errno.EINVAL, () => launch.InitVcpu(vcpu));
        SetSupportedCpuid(kvm, vcpu);
        launch.InitVcpu(vcpu);
        // FINALIZE_VM on a TD never initialized: "!is_hkid_assigned(kvm_tdx)" → EINVAL; its vCPU commands likewise.
        using var vm2 = CreateTd(kvm);
        AssertTdx(Errno.EINVAL, () => new TdxLaunch(vm2).FinalizeVm());
    }

    private static void AssertTdx(Errno errno, Action action)
    {
        var e = Assert.Throws<TdxCommandException>(action);
        Assert.True(errno == e.Errno && e.HardwareError == 0, $"expected {errno}, got {e.Message}");
    }

    private static long Raw(CaseContext ctx, Vm vm, uint id, uint flags, ulong data, ulong hwError)
    {
        var cmd = new kvm_tdx_cmd { id = id, flags = flags, data = data, hw_error = hwError };
        return ctx.Kernel.Ioctl(vm.Handle, KvmMemoryEncrypt.KVM_MEMORY_ENCRYPT_OP,
            System.Runtime.InteropServices.MemoryMarshal.AsBytes(System.Runtime.InteropServices.MemoryMarshal.CreateSpan(ref cmd, 1)));
    }

    private static PinnedArray<byte> Pin<T>(ref T value, int extra) where T : unmanaged
    {
        var buffer = new PinnedArray<byte>(System.Runtime.InteropServices.Marshal.SizeOf<T>() + extra, 64);
        System.Runtime.InteropServices.MemoryMarshal.Write(buffer.Span, in value);
        return buffer;
    }
}
