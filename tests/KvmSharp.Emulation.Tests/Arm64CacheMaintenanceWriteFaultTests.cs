// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Abi.Arm64;
using KvmSharp.Arm64;
using KvmSharp.Kernel;
using static KvmSharp.Vmm.Arch.Arm64.A64Register;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// A cache-maintenance abort at stage 2 is a write fault to KVM (Emulation/Arm64/A64Interpreter.CacheMaintenance.cs,
/// Arm64/Stage2Access.cs CacheMaintenance): kvm_emulate.h kvm_is_write_fault → kvm_vcpu_dabt_iswrite reads WnR, which
/// the Arm ARM sets for every CM abort ("ISS encoding for an exception from a Data Abort", WnR: "For faults on cache
/// maintenance and address translation instructions, this bit always returns a value of 1"). So, per 6.18
/// arch/arm64/kvm/mmu.c: on a page stage 2 does not map, user_mem_abort maps it writable and marks it dirty under dirty
/// logging ("if (writable &amp;&amp; !ret) mark_page_dirty_in_slot"); a page stage 2 maps takes no abort (a CM
/// operation needs only read permission there), whether a load mapped it or dirty logging write-protected it again
/// (GET_DIRTY_LOG / CLEAR_DIRTY_LOG: kvm_arch_mmu_enable_log_dirty_pt_masked); in a READONLY slot
/// kvm_handle_guest_abort's "write_fault &amp;&amp; !writable" goes to io_mem_abort, which has no syndrome: KVM_EXIT_ARM_NISV
/// with KVM_CAP_ARM_NISV_TO_USER, else KVM_RUN fails with ENOSYS. Emulator only: the real kernel here is x86.
/// The MMU stays off, so VA = IPA.
/// </summary>
public sealed class Arm64CacheMaintenanceWriteFaultTests
{
    private const ulong Base = 0x4000_0000, Report = 0x9000_0000, Offset = 0x48;

    private static readonly ulong Page = (ulong)Environment.SystemPageSize;

    /// <summary>DC CIVAC X0 (SYS #3, C7, C14, #1, X0).</summary>
    private const uint DcCivacX0 = 0xD50B_7E20;

    private const ulong Cm = 1UL << 8, WnR = 1UL << 6, FscTranslationL3 = 0x07;

    private enum Op { Load, Store, DcCivac }

    /// <summary>Each op on [x0], then STR x9 = the op's number to Report (an MMIO exit per op); then a spin.</summary>
    private static Arm64TestVm Guest(params Op[] ops) => new(a =>
    {
        a.MovImm(X(2), Report);
        a.MovImm(X(3), 0x5A5A);
        for (int i = 0; i < ops.Length; i++)
        {
            switch (ops[i])
            {
                case Op.Load: a.Ldr(X(1), X(0)); break;
                case Op.Store: a.Str(X(3), X(0)); break;
                case Op.DcCivac: a.Emit(DcCivacX0); break;
            }
            a.MovImm(X(9), (ulong)i + 1);
            a.Str(X(9), X(2));
        }
        var spin = a.CreateLabel();
        a.Bind(spin);
        a.B(spin);
    });

    private static KvmSharp.Vcpu Start(Arm64TestVm s)
    {
        var vcpu = s.AddVcpu();
        vcpu.SetX(0, Base + Offset);
        return vcpu;
    }

    /// <summary>Runs the next op; it must end with its report (op number <paramref name="n"/>).</summary>
    private static void Step(KvmSharp.Vcpu vcpu, ulong n)
    {
        var exit = vcpu.RunBounded();
        Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_MMIO && exit.MmioAddress == Report, exit.ToString());
        Assert.Equal(n, BitConverter.ToUInt64(exit.MmioData));
    }

    [Fact]
    public void Dc_civac_on_an_untouched_page_of_a_dirty_logged_slot_marks_it_dirty()
    {
        using var s = Guest(Op.DcCivac);
        using var memory = s.Vm.AllocateMemory(2 * Page);
        memory.Write<ulong>(Offset, 0x1234);
        using var slot = s.Vm.AddMemorySlot(1, Base, memory, flags: MemorySlotFlags.LogDirtyPages);
        var vcpu = Start(s);
        Step(vcpu, 1);
        var log = slot.GetDirtyLog();
        // user_mem_abort with write_fault: the page is mapped writable and marked; the other page is untouched.
        Assert.True(log.IsDirty(0), "DC CIVAC on an unmapped page is a write fault: the page is logged");
        Assert.False(log.IsDirty(1));
        // A clean and invalidate changes no data.
        Assert.Equal(0x1234UL, memory.Read<ulong>(Offset));
    }

    [Fact]
    public void Dc_civac_on_a_page_a_load_mapped_marks_nothing()
    {
        using var s = Guest(Op.Load, Op.DcCivac, Op.Store);
        using var memory = s.Vm.AllocateMemory(2 * Page);
        using var slot = s.Vm.AddMemorySlot(1, Base, memory, flags: MemorySlotFlags.LogDirtyPages);
        var vcpu = Start(s);
        Step(vcpu, 1);
        // The load mapped the page read-only ("logging_active && !write_fault": writable = false), nothing logged.
        Assert.False(slot.GetDirtyLog().IsDirty(0));
        Step(vcpu, 2);
        // The page is mapped: DC CIVAC needs only read permission at stage 2, so it takes no abort.
        Assert.False(slot.GetDirtyLog().IsDirty(0), "DC CIVAC on a mapped page faults nothing, marks nothing");
        // A store still faults on the read-only mapping and is logged.
        Step(vcpu, 3);
        Assert.True(slot.GetDirtyLog().IsDirty(0));
    }

    [Fact]
    public void Dc_civac_after_get_dirty_log_write_protected_a_stored_page_marks_nothing()
    {
        using var s = Guest(Op.Store, Op.DcCivac, Op.Store);
        using var memory = s.Vm.AllocateMemory(2 * Page);
        using var slot = s.Vm.AddMemorySlot(1, Base, memory, flags: MemorySlotFlags.LogDirtyPages);
        var vcpu = Start(s);
        Step(vcpu, 1);
        // kvm_get_dirty_log_protect: reported, cleared, and the page write-protected (still mapped).
        Assert.True(slot.GetDirtyLog().IsDirty(0));
        Step(vcpu, 2);
        Assert.False(slot.GetDirtyLog().IsDirty(0), "DC CIVAC on a write-protected mapped page faults nothing");
        Step(vcpu, 3);
        Assert.True(slot.GetDirtyLog().IsDirty(0));
    }

    [Fact]
    public void Dc_civac_after_clear_dirty_log_write_protected_a_stored_page_marks_nothing()
    {
        using var s = Guest(Op.Store, Op.DcCivac, Op.Store);
        s.Vm.EnableManualDirtyLogProtect();
        using var memory = s.Vm.AllocateMemory(2 * Page);
        using var slot = s.Vm.AddMemorySlot(1, Base, memory, flags: MemorySlotFlags.LogDirtyPages);
        var vcpu = Start(s);
        Step(vcpu, 1);
        var log = slot.GetDirtyLog();
        Assert.True(log.IsDirty(0));
        // KVM_CLEAR_DIRTY_LOG: the bit cleared, the page write-protected again (kvm_arch_mmu_enable_log_dirty_pt_masked).
        slot.ClearDirtyLog(log);
        Assert.False(slot.GetDirtyLog().IsDirty(0));
        Step(vcpu, 2);
        Assert.False(slot.GetDirtyLog().IsDirty(0), "DC CIVAC on a write-protected mapped page faults nothing");
        Step(vcpu, 3);
        Assert.True(slot.GetDirtyLog().IsDirty(0));
    }

    [Fact]
    public void Dc_civac_on_an_unmapped_page_of_a_read_only_slot_fails_kvm_run_with_enosys()
    {
        using var s = Guest(Op.DcCivac);
        using var memory = s.Vm.AllocateMemory(2 * Page);
        using var slot = s.Vm.AddMemorySlot(1, Base, memory, flags: MemorySlotFlags.ReadOnly);
        var vcpu = Start(s);
        ulong pc = CivacPc();
        // io_mem_abort: "No valid syndrome? … bail out otherwise" → -ENOSYS; the instruction did not complete.
        Assert.Equal(Errno.ENOSYS, Assert.Throws<KvmException>(() => vcpu.RunBounded()).Errno);
        Assert.Equal(pc, vcpu.GetPc());
    }

    [Fact]
    public void Dc_civac_on_an_unmapped_page_of_a_read_only_slot_exits_with_arm_nisv_under_the_cap()
    {
        using var s = Guest(Op.DcCivac);
        s.Vm.EnableCapability(KvmArm64Constants.KVM_CAP_ARM_NISV_TO_USER);
        using var memory = s.Vm.AllocateMemory(2 * Page);
        using var slot = s.Vm.AddMemorySlot(1, Base, memory, flags: MemorySlotFlags.ReadOnly);
        var vcpu = Start(s);
        var exit = vcpu.RunBounded();
        Assert.True(exit.IsArmNisv, exit.ToString());
        // kvm_vcpu_dabt_iss_nisv_sanitized: CM | WnR | FSC; fault_ipa with the VA's page offset (FAR_TO_FIPA_OFFSET).
        Assert.Equal(Cm | WnR | FscTranslationL3, exit.ArmNisvEsrIss);
        Assert.Equal(Base + Offset, exit.ArmNisvFaultIpa);
        Assert.Equal(CivacPc(), vcpu.GetPc());
        // Userspace steps over it: the guest goes on to its report.
        vcpu.SetPc(CivacPc() + 4);
        Step(vcpu, 1);
    }

    [Fact]
    public void Dc_civac_on_a_page_of_a_read_only_slot_a_load_mapped_completes()
    {
        using var s = Guest(Op.Load, Op.DcCivac);
        using var memory = s.Vm.AllocateMemory(2 * Page);
        using var slot = s.Vm.AddMemorySlot(1, Base, memory, flags: MemorySlotFlags.ReadOnly);
        var vcpu = Start(s);
        Step(vcpu, 1);
        // Mapped (read-only) by the load: no abort, so no io_mem_abort either.
        Step(vcpu, 2);
    }

    /// <summary>The guest address of the first DC CIVAC of <see cref="Guest"/>(DcCivac).</summary>
    private static ulong CivacPc()
    {
        byte[] code = Conformance.Guests.Arm64.Arm64Guest.Assemble(a =>
        {
            a.MovImm(X(2), Report);
            a.MovImm(X(3), 0x5A5A);
            a.Emit(DcCivacX0);
        });
        for (int i = 0; i < code.Length; i += 4)
        {
            if (BitConverter.ToUInt32(code, i) == DcCivacX0) return Conformance.Guests.Arm64.Arm64Guest.CodeGpa + (ulong)i;
        }
        throw new InvalidOperationException("no DC CIVAC");
    }
}
