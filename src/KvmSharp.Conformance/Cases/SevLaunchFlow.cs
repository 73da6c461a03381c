// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Kernel;
using KvmSharp.Memory;
using Xunit;

namespace KvmSharp.Conformance.Cases;

/// <summary>
/// The SEV, SEV-ES and SNP launch flows a VMM drives (arch/x86/kvm/svm/sev.c sev_mem_enc_ioctl and its commands;
/// Documentation/virt/kvm/x86/amd-memory-encryption.rst; tools/testing/selftests/kvm/x86/sev_smoke_test.c and
/// sev_init2_tests.c), with the kernel's errno for each command out of order, repeated, on the wrong VM type or with
/// bad arguments. This host has no SEV (VM type 0 only): the cases run on the emulator's X86Coco profile, whose firmware
/// is a model, and are skipped here with the reason.
/// </summary>
public static class SevLaunchFlow
{
    private const string Sev = "arch/x86/kvm/svm/sev.c";

    /// <summary>SEV guest policy bit 2 (SEV API "Guest Policy": ES required).</summary>
    private const uint PolicyEs = 1u << 2;

    /// <summary>A 16-byte aligned source buffer in process memory (the kernel pins it).</summary>
    private static PinnedArray<byte> Image(byte fill, int size = 4096)
    {
        var image = new PinnedArray<byte>(size, 64);
        image.Span.Fill(fill);
        return image;
    }

    [ConformanceCase(Sev + " sev_guest_init2, sev_launch_start, sev_launch_update_data, sev_launch_measure, sev_launch_finish, sev_guest_status: an SEV guest's launch (sev_smoke_test's order); the firmware goes LUPDATE → LSECRET → RUNNING; the measurement blob is 48 bytes (32 + a 16-byte nonce) and differs between two launches",
        Profile = EmulatedProfile.X86Coco, Requires = KernelRequirement.SevVmType)]
    public static void sev_launch_measures_and_finishes(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        byte[] Launch(byte fill, out SevGuestStatus before, out SevGuestStatus after)
        {
            using var vm = kvm.CreateVm(VmType.Sev);
            using var launch = SevLaunch.Open(vm);
            launch.Init();
            uint handle = launch.Start(policy: 0);
            Assert.NotEqual(0u, handle);
            var image = Image(fill);
            launch.UpdateData((nint)image.Address, 4096);
            before = launch.GetStatus();
            var m = launch.Measure();
            Assert.Equal((32, 16), (m.Measurement.Length, m.Nonce.Length));
            Assert.Equal(SevGuestState.LaunchSecret, launch.GetStatus().State);
            launch.Finish();
            after = launch.GetStatus();
            Assert.Equal(handle, after.Handle);
            return m.Measurement;
        }
        byte[] a = Launch(0x11, out var lupdate, out var running);
        Assert.Equal(SevGuestState.LaunchUpdate, lupdate.State);
        Assert.Equal(SevGuestState.Running, running.State);
        byte[] b = Launch(0x22, out _, out _);
        Assert.NotEqual(a, b);
    }

    [ConformanceCase(Sev + " sev_mem_enc_ioctl: the legacy KVM_SEV_INIT / ES_INIT are EINVAL on the KVM_X86_SEV*_VM types (sev_guest_init: vm_type != DEFAULT); KVM_SEV_INIT2 once (need_init: EINVAL), before any vCPU (EINVAL), flags and a GHCB version on plain SEV EINVAL, params unreadable EFAULT; launch commands before INIT2 ENOTTY (!sev_guest)",
        Profile = EmulatedProfile.X86Coco, Requires = KernelRequirement.SevVmType)]
    public static void sev_init2_rules(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using (var vm = kvm.CreateVm(VmType.Sev))
        using (var launch = SevLaunch.Open(vm))
        {
            // Before INIT2 the VM is not an SEV guest: the launch commands' "if (!sev_guest(kvm)) return -ENOTTY;".
            AssertSev(Errno.ENOTTY, 0, () => launch.Start(0));
            AssertSev(Errno.ENOTTY, 0, () => launch.Measure());
            AssertSev(Errno.ENOTTY, 0, () => launch.Finish());
            foreach (uint legacy in new[] { KvmMemoryEncrypt.KVM_SEV_INIT, KvmMemoryEncrypt.KVM_SEV_ES_INIT })
                CaseContext.AssertErrno(Errno.EINVAL, Raw(ctx, vm, legacy, 0, launch.SevDevice.Number, out _), $"sev id {legacy}");
            CaseContext.AssertErrno(Errno.EFAULT, Raw(ctx, vm, KvmMemoryEncrypt.KVM_SEV_INIT2, 8, launch.SevDevice.Number, out _), "INIT2, unreadable params");
            AssertSev(Errno.EINVAL, 0, () => launch.Init(ghcbVersion: 1));
            AssertSev(Errno.EINVAL, 0, () => launch.Init(vmsaFeatures: 1));
            launch.Init();
            AssertSev(Errno.EINVAL, 0, () => launch.Init());
            foreach (uint legacy in new[] { KvmMemoryEncrypt.KVM_SEV_INIT, KvmMemoryEncrypt.KVM_SEV_ES_INIT })
                CaseContext.AssertErrno(Errno.EINVAL, Raw(ctx, vm, legacy, 0, launch.SevDevice.Number, out _), $"sev id {legacy} after INIT2");
        }
        using (var vm = kvm.CreateVm(VmType.SevEs))
        using (var launch = SevLaunch.Open(vm))
        {
            using (vm.CreateVcpu()) { }
            // __sev_guest_init: "if (kvm->created_vcpus) return -EINVAL;" — even with the vCPU closed.
            AssertSev(Errno.EINVAL, 0, () => launch.Init());
        }
    }

    [ConformanceCase(Sev + " the launch state machine: LAUNCH_UPDATE_DATA / MEASURE / FINISH before LAUNCH_START go to sev->fd = 0, not /dev/sev (EBADF); LAUNCH_START with another descriptor EBADF and a non-zero handle EIO (firmware INVALID_GUEST); a second LAUNCH_START EIO (ASID_OWNED); FINISH before MEASURE and UPDATE_DATA after it EIO with INVALID_GUEST_STATE; update length 0 or wrapping EINVAL; a measure length query EIO with INVALID_LEN and the length; UPDATE_VMSA on plain SEV ENOTTY; unknown ids EINVAL",
        Profile = EmulatedProfile.X86Coco, Requires = KernelRequirement.SevVmType)]
    public static void sev_commands_out_of_order(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm(VmType.Sev);
        using var launch = SevLaunch.Open(vm);
        launch.Init();
        var image = Image(0x33);
        AssertSev(Errno.EBADF, 0, () => launch.UpdateData((nint)image.Address, 4096));
        AssertSev(Errno.EBADF, 0, () => launch.Finish());
        AssertSev(Errno.EBADF, 0, () => launch.GetStatus());
        // LAUNCH_START through a descriptor that is not /dev/sev: __sev_issue_cmd → sev_issue_cmd_external_user → EBADF.
        using (var other = ctx.OpenKvm())
        {
            var p = new kvm_sev_launch_start();
            var buffer = Pin(ref p);
            CaseContext.AssertErrno(Errno.EBADF, Raw(ctx, vm, KvmMemoryEncrypt.KVM_SEV_LAUNCH_START, buffer.Address, other.Handle.Number, out _), "LAUNCH_START via /dev/kvm");
            p = new kvm_sev_launch_start { handle = 7 };
            buffer = Pin(ref p);
            CaseContext.AssertErrno(Errno.EIO, Raw(ctx, vm, KvmMemoryEncrypt.KVM_SEV_LAUNCH_START, buffer.Address, launch.SevDevice.Number, out uint error), "LAUNCH_START with a handle");
            Assert.Equal((uint)SevFirmwareStatus.InvalidGuest, error);
            // A blob pointer with length 0 (psp_copy_user_blob) → EINVAL before the firmware.
            p = new kvm_sev_launch_start { dh_uaddr = image.Address, dh_len = 0 };
            buffer = Pin(ref p);
            CaseContext.AssertErrno(Errno.EINVAL, Raw(ctx, vm, KvmMemoryEncrypt.KVM_SEV_LAUNCH_START, buffer.Address, launch.SevDevice.Number, out _), "dh blob of length 0");
        }
        launch.Start(0);
        AssertSev(Errno.EIO, SevFirmwareStatus.AsidOwned, () => launch.Start(0));
        AssertSev(Errno.EINVAL, 0, () => launch.UpdateData((nint)image.Address, 0));
        AssertSev(Errno.EINVAL, 0, () => launch.UpdateData(-4096, 8192));
        AssertSev(Errno.EIO, SevFirmwareStatus.InvalidLength, () => launch.UpdateData((nint)image.Address, 15));
        AssertSev(Errno.ENOTTY, 0, () => launch.UpdateVmsa());
        AssertSev(Errno.EIO, SevFirmwareStatus.InvalidGuestState, () => launch.Finish());
        // The length query: EIO, INVALID_LEN, and the length written back.
        var q = new kvm_sev_launch_measure();
        var qb = Pin(ref q);
        CaseContext.AssertErrno(Errno.EIO, Raw(ctx, vm, KvmMemoryEncrypt.KVM_SEV_LAUNCH_MEASURE, qb.Address, launch.SevDevice.Number, out uint qerr), "measure length query");
        Assert.Equal(((uint)SevFirmwareStatus.InvalidLength, 48u), (qerr, System.Runtime.InteropServices.MemoryMarshal.Read<kvm_sev_launch_measure>(qb.Span).len));
        Assert.Equal(SevGuestState.LaunchUpdate, launch.GetStatus().State);
        launch.Measure();
        AssertSev(Errno.EIO, SevFirmwareStatus.InvalidGuestState, () => launch.UpdateData((nint)image.Address, 4096));
        AssertSev(Errno.EIO, SevFirmwareStatus.InvalidGuestState, () => launch.Measure());
        launch.Finish();
        AssertSev(Errno.EIO, SevFirmwareStatus.InvalidGuestState, () => launch.Finish());
        CaseContext.AssertErrno(Errno.EINVAL, Raw(ctx, vm, 99, 0, launch.SevDevice.Number, out _), "unknown id");
    }

    [ConformanceCase(Sev + " __sev_launch_update_vmsa: SEV-ES vCPUs keep open register state until KVM_SEV_LAUNCH_UPDATE_VMSA, then KVM_GET/SET_REGS, SREGS, FPU, XSAVE, XCRS, DEBUGREGS are EINVAL (guest_state_protected, fpstate confidential); a vCPU with KVM_SET_GUEST_DEBUG refuses (EINVAL, nothing protected); KVM_RUN with any kvm_valid_regs bit is EINVAL on the protected-state VM type, whose KVM_CAP_SYNC_REGS is 0",
        Profile = EmulatedProfile.X86Coco, Requires = KernelRequirement.SevEsVmType)]
    public static void sev_es_update_vmsa_protects_the_vcpus(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm(VmType.SevEs);
        using var launch = SevLaunch.Open(vm);
        launch.Init();
        using var vcpu = vm.CreateVcpu();
        var regs = vcpu.GetRegs();
        regs.rip = 0xfff0;
        vcpu.SetRegs(regs);
        // kvm_sync_valid_fields(kvm) is 0 with has_protected_state: KVM_CAP_SYNC_REGS answers 0 and any sync-register
        // bit refuses KVM_RUN.
        Assert.Equal(0, vm.CheckExtension(KvmCaps.KVM_CAP_SYNC_REGS));
        vcpu.SyncValidRegisters = KvmSyncRegs;
        CaseContext.AssertErrno(Errno.EINVAL, () => { vcpu.Run(); });
        vcpu.SyncValidRegisters = 0;
        launch.Start(PolicyEs);
        var image = Image(0x44);
        launch.UpdateData((nint)image.Address, 4096);
        vcpu.SetGuestDebug(GuestDebugFlags.Enable);
        AssertSev(Errno.EINVAL, 0, () => launch.UpdateVmsa());
        Assert.Equal(0xfff0UL, vcpu.GetRegs().rip);
        vcpu.SetGuestDebug(GuestDebugFlags.None);
        launch.UpdateVmsa();
        CaseContext.AssertErrno(Errno.EINVAL, () => vcpu.GetRegs());
        CaseContext.AssertErrno(Errno.EINVAL, () => vcpu.SetSregs(default));
        CaseContext.AssertErrno(Errno.EINVAL, () => vcpu.GetFpu());
        CaseContext.AssertErrno(Errno.EINVAL, () => vcpu.GetXsave());
        Assert.Equal(KvmMpState.KVM_MP_STATE_RUNNABLE, vcpu.GetMpState());
        Assert.Equal(32, launch.Measure().Measurement.Length);
        launch.Finish();
        Assert.Equal(SevGuestState.Running, launch.GetStatus().State);
    }

    /// <summary>KVM_SYNC_X86_REGS.</summary>
    private const ulong KvmSyncRegs = 1;

    [ConformanceCase(Sev + " snp_launch_start, snp_launch_update, snp_launch_finish: an SNP guest's launch (INIT2, SNP_LAUNCH_START, SNP_LAUNCH_UPDATE of a private guest_memfd page, SNP_LAUNCH_FINISH); afterwards the vCPU's registers are EINVAL (guest_state_protected) while its FPU stays readable (snp_launch_update_vmsa does not make the fpstate confidential), and SNP_LAUNCH_UPDATE fails EIO with INVALID_GUEST_STATE",
        Profile = EmulatedProfile.X86Coco, Requires = KernelRequirement.SnpVmType)]
    public static void snp_launch_flow(CaseContext ctx)
    {
        const ulong Gpa = 0x100000;
        using var kvm = ctx.OpenKvm();
        // An SNP VM's initial image goes into guest_memfd: a kernel with the SNP type has it (6.11+), a build without
        // CONFIG_KVM_GUEST_MEMFD cannot launch one.
        if (!kvm.SupportsGuestMemfd) CaseContext.Skip("SNP's initial memory is guest_memfd, which this kernel lacks (KVM_CAP_GUEST_MEMFD = 0)");
        using var vm = kvm.CreateVm(VmType.Snp);
        using var launch = SnpLaunch.Open(vm);
        launch.Init();
        const ulong Size = 3 * 4096;
        using var gmem = vm.CreateGuestMemfd(Size);
        using var slot = vm.AddGuestMemfdSlot(0, Gpa, Size, gmem);
        vm.SetMemoryAttributes(Gpa, Size, KvmConstants.KVM_MEMORY_ATTRIBUTE_PRIVATE);
        using var vcpu = vm.CreateVcpu();
        var image = Image(0x55);
        // SNP_LAUNCH_UPDATE before SNP_LAUNCH_START: "!sev->snp_context" → EINVAL.
        AssertSev(Errno.EINVAL, 0, () => launch.Update(Gpa / 4096, (nint)image.Address, 4096));
        AssertSev(Errno.EINVAL, 0, () => launch.Finish());
        launch.Start();
        launch.Update(Gpa / 4096, (nint)image.Address, 4096);
        launch.Update(Gpa / 4096 + 1, 0, 4096, SnpPageType.Zero);
        launch.Finish(hostData: [1, 2, 3]);
        CaseContext.AssertErrno(Errno.EINVAL, () => vcpu.GetRegs());
        CaseContext.AssertErrno(Errno.EINVAL, () => vcpu.GetSregs());
        _ = vcpu.GetFpu();
        // A page not added yet reaches the firmware, which has left the launch state.
        AssertSev(Errno.EIO, SevFirmwareStatus.InvalidGuestState, () => launch.Update(Gpa / 4096 + 2, (nint)image.Address, 4096));
        AssertSev(Errno.EIO, SevFirmwareStatus.InvalidGuestState, () => launch.Finish());
    }

    [ConformanceCase(Sev + " sev_mem_enc_ioctl / snp_launch_start: after INIT2 an SNP guest takes only SNP commands (ids below 100 EPERM, nothing copied back); SNP_LAUNCH_START checks flags, unknown policy bits and the must-be-one bit 17 (EINVAL), a descriptor that is not /dev/sev (snp_context_create fails: ENOTTY), and refuses a second context (EINVAL); before INIT2 the SNP commands are ENOTTY / EINVAL",
        Profile = EmulatedProfile.X86Coco, Requires = KernelRequirement.SnpVmType)]
    public static void snp_start_rules(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm(VmType.Snp);
        using var launch = SnpLaunch.Open(vm);
        AssertSev(Errno.ENOTTY, 0, () => launch.Start());
        AssertSev(Errno.ENOTTY, 0, () => launch.Finish());
        launch.Init();
        foreach (uint id in new[] { KvmMemoryEncrypt.KVM_SEV_INIT2, KvmMemoryEncrypt.KVM_SEV_LAUNCH_START, KvmMemoryEncrypt.KVM_SEV_LAUNCH_MEASURE })
            CaseContext.AssertErrno(Errno.EPERM, Raw(ctx, vm, id, 0, launch.SevDevice.Number, out _), $"sev id {id} on an SNP guest");
        AssertSev(Errno.EINVAL, 0, () => launch.Start(policy: SnpLaunch.PolicySmt));
        AssertSev(Errno.EINVAL, 0, () => launch.Start(policy: SnpLaunch.PolicyReservedMustBeOne | (1UL << 18)));
        var p = new kvm_sev_snp_launch_start { policy = SnpLaunch.PolicyReservedMustBeOne, flags = 1 };
        var buffer = Pin(ref p);
        CaseContext.AssertErrno(Errno.EINVAL, Raw(ctx, vm, KvmMemoryEncrypt.KVM_SEV_SNP_LAUNCH_START, buffer.Address, launch.SevDevice.Number, out _), "flags");
        p.flags = 0;
        buffer = Pin(ref p);
        CaseContext.AssertErrno(Errno.ENOTTY, Raw(ctx, vm, KvmMemoryEncrypt.KVM_SEV_SNP_LAUNCH_START, buffer.Address, vm.Handle.Number, out _), "sev_fd = the VM fd");
        launch.Start();
        AssertSev(Errno.EINVAL, 0, () => launch.Start());
    }

    private static void AssertSev(Errno errno, SevFirmwareStatus status, Action action)
    {
        var e = Assert.Throws<SevCommandException>(action);
        Assert.True((errno, status) == (e.Errno, e.FirmwareStatus), $"expected {errno}/{status}, got {e.Message}");
    }

    private static void AssertSev(Errno errno, int status, Action action) => AssertSev(errno, (SevFirmwareStatus)status, action);

    /// <summary>A raw KVM_MEMORY_ENCRYPT_OP with kvm_sev_cmd on the VM fd; the firmware error as the kernel left it.</summary>
    private static long Raw(CaseContext ctx, Vm vm, uint id, ulong data, int sevFd, out uint error)
    {
        var cmd = new kvm_sev_cmd { id = id, data = data, sev_fd = (uint)sevFd };
        long rc = ctx.Kernel.Ioctl(vm.Handle, KvmMemoryEncrypt.KVM_MEMORY_ENCRYPT_OP,
            System.Runtime.InteropServices.MemoryMarshal.AsBytes(System.Runtime.InteropServices.MemoryMarshal.CreateSpan(ref cmd, 1)));
        error = cmd.error;
        return rc;
    }

    private static PinnedArray<byte> Pin<T>(ref T value) where T : unmanaged
    {
        var buffer = new PinnedArray<byte>(System.Runtime.InteropServices.Marshal.SizeOf<T>(), 64);
        System.Runtime.InteropServices.MemoryMarshal.Write(buffer.Span, in value);
        return buffer;
    }
}
