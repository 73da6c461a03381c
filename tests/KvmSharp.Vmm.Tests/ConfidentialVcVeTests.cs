// SPDX-License-Identifier: MIT
using KvmSharp.Emulation;
using KvmSharp.Vmm.Arch.X86_64;
using KvmSharp.Vmm.GuestAbi;
using KvmSharp.Vmm.Loader;
using KvmSharp.Vmm.Tests.CGuest;
using KvmSharp.Vmm.Tests.Infrastructure;

namespace KvmSharp.Vmm.Tests;

/// <summary>
/// What the confidential micro-VMs' exception handlers serve beyond IN/OUT (Arch/X86_64/SnpRuntime, TdRuntime), on the
/// emulated kernel with in-place conversion (the only kernel here with SEV-SNP and TDX):
/// <list type="bullet">
/// <item>SNP #VC: string IOIO through the GHCB's shared buffer (Linux vc_handle_ioio: sw_scratch, at most 2032 bytes a
/// VMGEXIT, RSI/RDI/RCX advanced, DF), which KVM hands to the VMM as one KVM_EXIT_IO per chunk (sev.c
/// sev_es_string_io) — a 100-byte console write is 1 exit instead of 100 — and VMMCALL (vc_handle_vmmcall: KVM's
/// hypercall ABI through the GHCB).</item>
/// <item>TD #VE: string I/O unrolled into one TDG.VP.VMCALL&lt;Instruction.IO&gt; per element (Linux TD guests unroll
/// it in the kernel), CPUID of the hypervisor range, RDMSR and WRMSR through TDG.VP.VMCALL (tdx.c handle_cpuid,
/// read_msr, write_msr). The last two need the emulated TDX module to raise #VE for CPUID and MSR accesses as the TDX
/// module does; see each test.</item>
/// </list>
/// </summary>
public sealed class ConfidentialVcVeTests
{
    /// <summary>KVM_HC_VAPIC_POLL_IRQ (answered 0 by KVM itself) and -KVM_ENOSYS (an unknown hypercall's answer).</summary>
    private const ulong VapicPollIrq = 1, KvmEnosys = unchecked((ulong)-1000L);

    private static MicroVm CreateSnp(TestKernel k, GuestImage? image = null) => SnpMicroVm.Create(k, image ?? StringIoGuest.Image());

    private static void OnTd(Action<MicroVm> body)
    {
        using var k = new EmulatedKernel(EmulatorConfig.X86_64(inPlaceConversion: true));
        using (var kvm = Kvm.Open(k, proposals: k.Config.Proposals))
        using (var vm = MicroVm.Create(StringIoGuest.Image(), new MicroVmOptions { Kvm = kvm, VmType = VmType.Tdx, Timeout = TimeSpan.FromSeconds(60) }))
        {
            body(vm);
        }
        Assert.Equal(0, k.OpenFdCount);
    }

    // ---- SEV-SNP: string I/O and VMMCALL through the #VC handler ----

    [Fact]
    public void Snp_a_100_byte_rep_outsb_is_one_exit_where_100_outs_are_100()
    {
        using var k = TestKernel.EmulatedWithInPlaceConversion();
        using var vm = CreateSnp(k);
        var loop = vm.Call("putc_loop", 100);
        Assert.True(loop.IsSuccess, loop.ToString());
        Assert.Equal(StringIoGuest.Text[..100], loop.Console);
        Assert.Equal(101, loop.Exits);
        var rep = vm.Call("write", 100);
        Assert.True(rep.IsSuccess, rep.ToString());
        Assert.Equal(StringIoGuest.Text[..100], rep.Console);
        Assert.Equal(StringIoGuest.Packed(100, 0), rep.Value);   // RSI + 100, RCX 0
        Assert.Equal(2, rep.Exits);                              // one KVM_EXIT_IO with count 100, the return
        // The string request the handler made: IOIO, the shared buffer as scratch.
        Assert.Equal(Layout.Ghcb + SnpRuntime.GhcbSharedBuffer, vm.Memory.Read<ulong>(Layout.Ghcb + SnpRuntime.GhcbSwScratch));
    }

    [Fact]
    public void Snp_a_write_larger_than_the_shared_buffer_goes_in_chunks_of_2032_bytes()
    {
        using var k = TestKernel.EmulatedWithInPlaceConversion();
        using var vm = CreateSnp(k);
        var r = vm.Call("write", StringIoGuest.TextLength);
        Assert.True(r.IsSuccess, r.ToString());
        Assert.Equal(StringIoGuest.Text, r.Console);
        Assert.Equal(StringIoGuest.Packed(StringIoGuest.TextLength, 0), r.Value);
        // 2032 + 2032 + 936 bytes: three #VCs, three exits, and the return.
        Assert.Equal(4, r.Exits);
        var back = vm.Call("write_back", 3000);
        Assert.Equal(new string([.. StringIoGuest.Text[..3000].Reverse()]), back.Console);
        Assert.Equal(StringIoGuest.Packed(-3000, 0), back.Value);
        Assert.Equal(3, back.Exits);
    }

    [Fact]
    public void Snp_outs_and_ins_of_each_size_count_and_direction_move_the_registers_as_the_instruction()
    {
        using var k = TestKernel.EmulatedWithInPlaceConversion();
        using var vm = CreateSnp(k);
        var once = vm.Call("outs_once");
        Assert.Equal(StringIoGuest.Text[..1], once.Console);
        Assert.Equal(StringIoGuest.Packed(1, 77), once.Value);   // no REP: RCX untouched
        var none = vm.Call("write_none");
        Assert.Equal("", none.Console);
        Assert.Equal(StringIoGuest.Packed(0, 0), none.Value);
        Assert.Equal(1, none.Exits);
        Assert.Equal(StringIoGuest.Wide, vm.Call("outsw", 4).Console);
        Assert.Equal(StringIoGuest.Packed(8, 0), vm.Call("outsw", 4).Value);
        Assert.Equal(StringIoGuest.Wide, vm.Call("outsd", 4).Console);
        Assert.Equal(StringIoGuest.Packed(16, 0), vm.Call("outsd", 4).Value);
        Assert.Equal(StringIoGuest.Packed(100, 100 * 0x60), vm.Call("insb", 100).Value);
        Assert.Equal(StringIoGuest.Packed(200, 100 * 0x60), vm.Call("insw", 100).Value);
        // 3000 bytes down: two chunks (2032 + 968), each copied from the shared buffer to descending addresses.
        var down = vm.Call("insb_back", 3000);
        Assert.Equal(StringIoGuest.Packed(-3000, 3000 * 0x60), down.Value);
        Assert.Equal(3, down.Exits);
    }

    [Theory]
    [InlineData("a32_outsb")]
    [InlineData("fs_outsb")]
    public void Snp_string_io_with_32_bit_addresses_or_an_fs_base_is_not_served_and_reported_as_vector_29(string function)
    {
        using var k = TestKernel.EmulatedWithInPlaceConversion();
        using var vm = CreateSnp(k);
        var r = vm.Call(function);
        Assert.Equal(GuestOutcome.Exception, r.Outcome);
        Assert.Equal(SnpRuntime.VmmCommunicationException, r.Exception!.Vector);
        Assert.Equal((ulong)SnpRuntime.ExitIoio, r.Exception.ErrorCode);
        Assert.Equal("", r.Console);
    }

    [Fact]
    public void Snp_vmmcall_goes_through_the_ghcb_with_the_kvm_hypercall_abi()
    {
        using var k = TestKernel.EmulatedWithInPlaceConversion();
        using var vm = CreateSnp(k);
        var poll = vm.Call("vmmcall", VapicPollIrq, 0);
        Assert.True(poll.IsSuccess, poll.ToString());
        Assert.Equal(0UL, poll.Value);
        Assert.Equal(1, poll.Exits);                               // answered inside KVM: only the return exits
        // The handler gave KVM CPL 0 (the GHCB's sw_exit_code is the return OUT's by now; the CPL byte stays).
        Assert.Equal(0, vm.Memory.Read<byte>(Layout.Ghcb + SnpRuntime.GhcbCpl));
        Assert.Equal(KvmEnosys, vm.Call("vmmcall", 0xFFFF, 0).Value);
        // The micro-VM takes calls on after them.
        Assert.Equal(StringIoGuest.Text[..5], vm.Call("write", 5).Console);
    }

    /// <summary>The gcc-built SDK guest's number printers: one kvms_write each in an SNP micro-VM.</summary>
    [SkippableFact]
    public void Snp_the_sdk_guest_s_print_functions_cost_one_exit_per_write()
    {
        var built = GccBuild.Guest("sdk_guest.c", "gcc");
        Skip.If(built.Output is null, $"the gcc-built SDK guest is not available: {built.Unavailable}");
        using var k = TestKernel.EmulatedWithInPlaceConversion();
        using var vm = CreateSnp(k, GuestImage.Load(built.Output!));
        Assert.Equal(GuestOutcome.Exit, vm.Run().Outcome);
        var r = vm.Call("print_numbers", 1234567890);
        Assert.Equal("1234567890 -1234567890 0x499602D2\n", r.Console);
        // u64, ' ', i64, ' ', hex, "\n" and the return (one OUT per byte made it 35).
        Assert.Equal(7, r.Exits);
    }

    [Fact]
    public void Snp_micro_vms_are_not_offered_the_console_write_port_and_td_ones_print_through_the_shared_console_buffer()
    {
        using (var k = TestKernel.EmulatedWithInPlaceConversion())
        using (var vm = CreateSnp(k))
        {
            // SNP: the #VC handler batches REP OUTSB through the GHCB instead.
            var r = vm.Call("console_write", 10);
            Assert.True(r.Outcome == GuestOutcome.UnknownPort && r.Port == Ports.ConsoleWrite, r.ToString());
            Assert.Equal(0UL, vm.Memory.Read<ulong>(CallRegion.Address(CallRegion.Features)) & CallRegion.FeatureConsoleWrite);
        }
        OnTd(vm =>
        {
            // A TD: bits 2 and 3; GuestProgram.ConsoleWrite copies the private text into the console buffer (TdConsoleTests).
            var r = vm.Call("console_write", 10);
            Assert.True(r.IsSuccess, r.ToString());
            Assert.Equal((10UL, StringIoGuest.Text[..10], 2), (r.Value, r.Console, r.Exits));
            const ulong Bits = CallRegion.FeatureConsoleWrite | CallRegion.FeatureConsoleBuffer;
            Assert.Equal(Bits, vm.Memory.Read<ulong>(CallRegion.Address(CallRegion.Features)) & Bits);
        });
    }

    // ---- TD: string I/O unrolled, CPUID and MSRs through TDG.VP.VMCALL ----

    [Fact]
    public void Td_rep_outsb_is_unrolled_into_one_tdvmcall_per_byte() => OnTd(vm =>
    {
        var r = vm.Call("write", 100);
        Assert.True(r.IsSuccess, r.ToString());
        Assert.Equal(StringIoGuest.Text[..100], r.Console);
        Assert.Equal(StringIoGuest.Packed(100, 0), r.Value);
        Assert.Equal(101, r.Exits);                               // a TD has no string I/O: 100 exits, the return
        StringIoGuest.AssertBackwardSingleAndEmptyOuts(vm);
        Assert.Equal(StringIoGuest.Wide, vm.Call("outsw", 4).Console);
        Assert.Equal(StringIoGuest.Packed(16, 0), vm.Call("outsd", 4).Value);
    });

    [Fact]
    public void Td_ins_is_unrolled_into_one_tdvmcall_per_element() => OnTd(vm =>
    {
        Assert.Equal(StringIoGuest.Packed(20, 20 * 0x60), vm.Call("insb", 20).Value);
        Assert.Equal(StringIoGuest.Packed(20, 10 * 0x60), vm.Call("insw", 10).Value);
        Assert.Equal(StringIoGuest.Packed(-20, 20 * 0x60), vm.Call("insb_back", 20).Value);
    });

    [Theory]
    [InlineData("a32_outsb")]
    [InlineData("fs_outsb")]
    public void Td_string_io_with_32_bit_addresses_or_an_fs_base_is_not_served_and_reported_as_vector_20(string function) => OnTd(vm =>
    {
        var r = vm.Call(function);
        Assert.Equal(GuestOutcome.Exception, r.Outcome);
        Assert.Equal(TdRuntime.VirtualizationException, r.Exception!.Vector);
        Assert.Equal("", r.Console);
    });

    /// <summary>
    /// CPUID 0x4000_0000 in a TD: the TDX module always raises #VE for the hypervisor range, the handler asks with
    /// TDG.VP.VMCALL&lt;Instruction.CPUID&gt; and KVM answers its signature (tdx_emulate_cpuid → kvm_cpuid). A leaf the
    /// module turns into a #VE outside that range reads zeros. Needs the emulated TDX module's CPUID #VEs (helper tdve).
    /// </summary>
    [Fact]
    public void Td_cpuid_of_the_hypervisor_range_answers_kvm_s_signature() => OnTd(vm =>
    {
        var max = vm.Call("cpuid", 0x4000_0000, 0);
        Assert.True(max.IsSuccess, max.ToString());
        Assert.True(max.Value >= 0x4000_0001, $"max hypervisor leaf 0x{max.Value:X}");
        byte[] signature = [.. new ulong[] { 1, 2, 3 }.SelectMany(reg => BitConverter.GetBytes((uint)vm.Call("cpuid", 0x4000_0000, reg).Value!.Value))];
        Assert.Equal("KVMKVMKVM\0\0\0", System.Text.Encoding.ASCII.GetString(signature));
        // The brand string leaf is a #VE the module raises itself (td_cpuid_exit: 0x80000002–0x80000005 without
        // REDUCE_VE); outside the hypervisor range the handler answers all zeros without asking (handle_cpuid).
        for (ulong reg = 0; reg < 4; reg++) Assert.Equal(0UL, vm.Call("cpuid", 0x8000_0002, reg).Value);
    });

    /// <summary>
    /// RDMSR/WRMSR of MSRs the TDX module leaves to the VMM (#VE) go through TDG.VP.VMCALL&lt;Instruction.RDMSR/WRMSR&gt;:
    /// an MTRR MSR KVM emulates reads back what was written; IA32_APIC_BASE reads KVM's value but a write is refused
    /// (tdx_is_read_only_msr: TDVMCALL_STATUS_INVALID_OPERAND), which the handler turns into the guest's #GP(0) as
    /// Linux's ve_raise_fault does. This last assertion holds only when the emulated TDX module raises #VE for the
    /// MSR (helper tdve's work): a module that ran WRMSR itself would accept the unchanged value.
    /// </summary>
    [Fact]
    public void Td_rdmsr_and_wrmsr_go_to_kvm_and_a_refused_write_is_the_guest_s_gp() => OnTd(vm =>
    {
        const uint ApicBase = 0x1B, MtrrDefType = 0x2FF;
        var apic = vm.Call("rdmsr", ApicBase);
        Assert.True(apic.IsSuccess, apic.ToString());
        Assert.Equal(0xFEE0_0000UL, apic.Value!.Value & 0xFFFF_F000);
        Assert.Equal(0UL, vm.Call("wrmsr", MtrrDefType, 0xC06).Value);
        Assert.Equal(0xC06UL, vm.Call("rdmsr", MtrrDefType).Value);
        var refused = vm.Call("wrmsr", ApicBase, apic.Value!.Value);
        Assert.Equal(GuestOutcome.Exception, refused.Outcome);
        Assert.Equal(13, refused.Exception!.Vector);
        Assert.Equal(0UL, refused.Exception.ErrorCode);
    });
}
