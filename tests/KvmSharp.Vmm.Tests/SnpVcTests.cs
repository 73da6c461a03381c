// SPDX-License-Identifier: MIT
using Iced.Intel;
using KvmSharp.Vmm.Arch.X86_64;
using KvmSharp.Vmm.Devices;
using KvmSharp.Vmm.GuestAbi;
using KvmSharp.Vmm.Guests;
using KvmSharp.Vmm.Loader;
using KvmSharp.Vmm.Tests.CGuest;
using KvmSharp.Vmm.Tests.Infrastructure;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Vmm.Tests;

/// <summary>
/// The #VC path of an SEV-SNP micro-VM (Arch/X86_64/SnpRuntime): once SNP_LAUNCH_FINISH protected the vCPU, an IN, OUT,
/// CPUID, RDMSR or WRMSR is not an exit but #VC (vector 29, error code = the SVM exit code) in the guest; the runtime's
/// handler fills the shared GHCB page (<see cref="Layout.Ghcb"/>, registered at boot with the GHCB MSR protocol) and
/// asks with VMGEXIT, and the VMM sees the usual KVM_EXIT_IO. Runs on the emulated kernel with in-place conversion, the
/// only kernel here with SNP (its SEV-ES/SNP model raises #VC and serves the GHCB as sev.c sev_handle_vmgexit does).
/// </summary>
public sealed class SnpVcTests
{
    private const ulong Prefill = 0x1122_3344_5566_7788;

    private static ulong Ghcb(MicroVm vm, int offset) => vm.Memory.Read<ulong>(Layout.Ghcb + (ulong)offset);

    /// <summary>
    /// <c>in8/in16/in32(prefill)</c>: RAX = prefill, IN AL/AX/EAX from COM1's LSR (reads 0x60), returns RAX.
    /// <c>out_forms()</c>: "abcde" to COM1 through OUT DX,AL, OUT DX,AX, OUT DX,EAX, and OUT DX,AL with a CS override and
    /// with a bare REX prefix. <c>cpuid_code()</c> / <c>out_code()</c>: CPUID / an OUT, then the GHCB's sw_exit_code.
    /// <c>out_imm()</c> / <c>in_imm()</c>: OUT 0x80,AL / IN AL,0x80 (no device there). <c>outsb()</c>: REP OUTSB of the
    /// call data's first byte. <c>vmmcall()</c>: VMMCALL of hypercall 0. <c>no_idt()</c>: an IDT with limit 0, then an
    /// OUT. <c>busy()</c>: marks the #VC handler as running, then an OUT. <c>rdmsr(index)</c>, <c>wrmsr(index, value)</c>.
    /// </summary>
    private static GuestImage VcGuest()
    {
        var p = new GuestProgram();
        var a = p.Asm;
        Label start = p.Export("_start");
        p.Place(ref start);
        p.ExitWith(0);

        foreach ((string name, AssemblerRegister8? r8, AssemblerRegister16? r16) in new (string, AssemblerRegister8?, AssemblerRegister16?)[]
                     { ("in8", al, null), ("in16", null, ax), ("in32", null, null) })
        {
            Label f = p.Export(name);
            p.Place(ref f);
            a.mov(rax, rdi);
            a.mov(dx, (ushort)(Ports.Com1 + Serial16550.Lsr));
            if (r8 is { } b) a.@in(b, dx);
            else if (r16 is { } w) a.@in(w, dx);
            else a.@in(eax, dx);
            a.ret();
        }

        Label outForms = p.Export("out_forms");
        p.Place(ref outForms);
        a.mov(dx, Ports.Com1);
        a.mov(eax, 'a');
        a.@out(dx, al);
        a.mov(eax, 'b');
        a.@out(dx, ax);
        a.mov(eax, 'c');
        a.@out(dx, eax);
        a.mov(eax, 'd');
        a.db(0x2E, 0xEE);                 // CS override, OUT DX,AL
        a.mov(eax, 'e');
        a.db(0x40, 0xEE);                 // REX, OUT DX,AL
        a.xor(eax, eax);
        a.ret();

        Label cpuidCode = p.Export("cpuid_code");
        p.Place(ref cpuidCode);
        a.push(rbx);
        a.xor(eax, eax);
        a.xor(ecx, ecx);
        a.cpuid();
        a.mov(rax, __qword_ptr[Layout.Ghcb + 0x390]);
        a.pop(rbx);
        a.ret();

        Label outCode = p.Export("out_code");
        p.Place(ref outCode);
        a.mov(dx, Ports.Com1);
        a.mov(al, (byte)'z');
        a.@out(dx, al);
        a.mov(rax, __qword_ptr[Layout.Ghcb + 0x390]);
        a.ret();

        Label outImm = p.Export("out_imm");
        p.Place(ref outImm);
        a.@out(0x80, al);
        a.ret();

        Label inImm = p.Export("in_imm");
        p.Place(ref inImm);
        a.@in(al, 0x80);
        a.ret();

        Label outsb = p.Export("outsb");
        p.Place(ref outsb);
        a.mov(rsi, Layout.CallData);
        a.mov(dx, Ports.Com1);
        a.mov(ecx, 1);
        a.rep.outsb();
        a.ret();

        Label vmmcall = p.Export("vmmcall");
        p.Place(ref vmmcall);
        a.xor(eax, eax);
        a.vmmcall();
        a.ret();

        Label noIdt = p.Export("no_idt");
        p.Place(ref noIdt);
        a.push(0);
        a.push(0);
        a.lidt(__[rsp]);
        a.mov(dx, Ports.Com1);
        a.@out(dx, al);
        a.ret();

        Label busy = p.Export("busy");
        p.Place(ref busy);
        a.mov(__byte_ptr[SnpRuntime.Busy], 1);
        a.mov(dx, Ports.Com1);
        a.@out(dx, al);
        a.ret();

        p.AddMsrFunctions();
        return p.Build(start);
    }

    [Fact]
    public void Hello_runs_with_its_console_out_served_through_the_ghcb_which_stays_shared()
    {
        using var k = SnpMicroVm.Kernel();
        using (var vm = SnpMicroVm.Create(k, Hello.Image()))
        {
            Assert.Equal(0UL, Ghcb(vm, SnpRuntime.GhcbSwExitCode));
            var r = vm.Run();
            Assert.True(r.Outcome == GuestOutcome.Exit && r.Status == 0, r.ToString());
            Assert.Equal(Hello.Greeting, r.Console);
            // The last #VC was the exit OUT: IOIO, GHCB protocol 2, usage 0; the page is still shared, the guard private.
            Assert.Equal((ulong)SnpRuntime.ExitIoio, Ghcb(vm, SnpRuntime.GhcbSwExitCode));
            Assert.Equal(SnpRuntime.ProtocolVersion, vm.Memory.Read<ushort>(Layout.Ghcb + SnpRuntime.GhcbProtocolVersion));
            Assert.Equal(0u, vm.Memory.Read<uint>(Layout.Ghcb + SnpRuntime.GhcbUsage));
            Assert.True(vm.Memory.IsShared(Layout.Ghcb, Layout.PageSize));
            Assert.False(vm.Memory.IsShared(Layout.SnpStackGuard, 1));
        }
        Assert.Equal(0, k.Emulator!.OpenFdCount - 1);
    }

    [Fact]
    public void In_of_each_size_is_merged_into_rax_as_the_instruction_would_and_calls_keep_coming()
    {
        using var k = SnpMicroVm.Kernel();
        using var vm = SnpMicroVm.Create(k, VcGuest());
        // AL and AX keep RAX's other bits, EAX zero-extends; LSR reads 0x60 (and 0 in its wider bytes).
        Assert.Equal((Prefill & ~0xFFUL) | Serial16550.LsrIdle, vm.Call("in8", [Prefill]).Value);
        Assert.Equal((Prefill & ~0xFFFFUL) | Serial16550.LsrIdle, vm.Call("in16", [Prefill]).Value);
        Assert.Equal((ulong)Serial16550.LsrIdle, vm.Call("in32", [Prefill]).Value);
        Assert.Equal((ulong)SnpRuntime.ExitIoio, Ghcb(vm, SnpRuntime.GhcbSwExitCode));
    }

    [Fact]
    public void Out_of_each_size_and_with_segment_and_rex_prefixes_reaches_the_console()
    {
        using var k = SnpMicroVm.Kernel();
        using var vm = SnpMicroVm.Create(k, VcGuest());
        var r = vm.Call("out_forms");
        Assert.True(r.IsSuccess, r.ToString());
        Assert.Equal("abcde", r.Console);
    }

    [Fact]
    public void Cpuid_and_out_leave_their_exit_codes_in_the_ghcb_the_guest_filled()
    {
        using var k = SnpMicroVm.Kernel();
        using var vm = SnpMicroVm.Create(k, VcGuest());
        Assert.Equal((ulong)SnpRuntime.ExitCpuid, vm.Call("cpuid_code").Value);
        var r = vm.Call("out_code");
        Assert.Equal((ulong)SnpRuntime.ExitIoio, r.Value);
        Assert.Equal("z", r.Console);
    }

    [Theory]
    [InlineData("out_imm", "OUT to unknown port 0x80")]
    [InlineData("in_imm", "IN from unknown port 0x80")]
    public void The_imm8_forms_reach_the_vmm_with_their_port(string function, string detail)
    {
        using var k = SnpMicroVm.Kernel();
        using var vm = SnpMicroVm.Create(k, VcGuest());
        var r = vm.Call(function);
        Assert.Equal(GuestOutcome.UnknownPort, r.Outcome);
        Assert.Equal((ushort)0x80, r.Port);
        Assert.Contains(detail, r.Detail, StringComparison.Ordinal);
    }

    /// <summary>
    /// REP OUTSB and VMMCALL, once reported as vector 29, are served (string IOIO through the GHCB's shared buffer,
    /// VMMCALL with KVM's hypercall ABI; ConfidentialVcVeTests has the details and what is still not served).
    /// </summary>
    [Fact]
    public void Rep_outsb_and_vmmcall_are_served_through_the_ghcb()
    {
        using var k = SnpMicroVm.Kernel();
        using var vm = SnpMicroVm.Create(k, VcGuest());
        var outsb = vm.Call("outsb", "Q"u8);
        Assert.True(outsb.IsSuccess, outsb.ToString());
        Assert.Equal("Q", outsb.Console);
        var vmmcall = vm.Call("vmmcall");
        Assert.True(vmmcall.IsSuccess, vmmcall.ToString());
        Assert.Equal(unchecked((ulong)-1000L), vmmcall.Value); // hypercall 0: -KVM_ENOSYS
    }

    [Fact]
    public void Rdmsr_and_wrmsr_go_through_the_ghcb_and_a_refused_msr_is_the_guest_s_gp()
    {
        const uint Efer = 0xC000_0080, KernelGsBase = 0xC000_0102, Bogus = 0x4B56_0000;
        using var k = SnpMicroVm.Kernel();
        using (var vm = SnpMicroVm.Create(k, VcGuest()))
        {
            var r = vm.Call("rdmsr", [Efer]);
            Assert.True(r.IsSuccess, r.ToString());
            Assert.Equal(LongMode.EFER_LME | LongMode.EFER_LMA, r.Value!.Value & (LongMode.EFER_LME | LongMode.EFER_LMA));
            // WRMSR hands EDX:EAX over, RDMSR brings both halves back.
            Assert.Equal(0UL, vm.Call("wrmsr", [KernelGsBase, 0x0000_7FFF_1234_5678]).Value);
            Assert.Equal(0x0000_7FFF_1234_5678UL, vm.Call("rdmsr", [KernelGsBase]).Value);
        }
        using (var vm = SnpMicroVm.Create(k, VcGuest()))
        {
            var r = vm.Call("rdmsr", [Bogus]);
            Assert.Equal(GuestOutcome.Exception, r.Outcome);
            Assert.Equal(13, r.Exception!.Vector);
            Assert.Equal(0UL, r.Exception.ErrorCode);
            Assert.InRange(r.Exception.Rip, vm.Image.Resolve("rdmsr"), vm.Image.Resolve("rdmsr") + 8);
        }
    }

    [Fact]
    public void A_guest_without_a_vc_gate_triple_faults_at_its_first_out()
    {
        using var k = SnpMicroVm.Kernel();
        using var vm = SnpMicroVm.Create(k, VcGuest());
        var r = vm.Call("no_idt");
        Assert.Equal(GuestOutcome.Shutdown, r.Outcome);
        Assert.True(vm.IsFaulted);
    }

    [Fact]
    public void A_vc_while_the_handler_runs_is_a_termination_request_not_a_loop()
    {
        using var k = SnpMicroVm.Kernel();
        using var vm = SnpMicroVm.Create(k, VcGuest());
        var r = vm.Call("busy");
        Assert.Equal(GuestOutcome.UnexpectedExit, r.Outcome);
        Assert.Contains("SEV termination request", r.Detail, StringComparison.Ordinal);
        Assert.Contains("reason set 0, code 0", r.Detail, StringComparison.Ordinal);
        Assert.Throws<MicroVmException>(() => vm.Call("in8", [0]));
    }

    /// <summary>
    /// The gcc-built SDK guest (CGuest/sdk_guest.c): its kvms_putc (OUT DX,AL), kvms_exit (OUT DX,EAX), host calls,
    /// input and output and kvms_cpuid all go through the #VC handler, call after call in one sealed micro-VM.
    /// </summary>
    [SkippableFact]
    public void The_gcc_built_sdk_guest_prints_computes_and_exits_through_the_vc_handler()
    {
        var built = GccBuild.Guest("sdk_guest.c", "gcc");
        Skip.If(built.Output is null, $"the gcc-built SDK guest is not available: {built.Unavailable}");
        using var k = SnpMicroVm.Kernel();
        using var vm = SnpMicroVm.Create(k, GuestImage.Load(built.Output!));
        var start = vm.Run();
        Assert.True(start.Outcome == GuestOutcome.Exit && start.Status == 0, start.ToString());
        Assert.Equal($"sdk guest, ABI {CallRegion.VersionValue}\n", start.Console);
        Assert.Equal("1234567890 -1234567890 0x499602D2\n", vm.Call("print_numbers", 1234567890).Console);
        Assert.Equal(3_000_000UL + 6, vm.Call("sum_args", 1, 2, 3).Value);
        var reversed = vm.Call("reverse", "hello, guest"u8);
        Assert.Equal("tseug ,olleh", System.Text.Encoding.ASCII.GetString(reversed.Output.Span));
        Assert.Equal(0b10UL, vm.Call("tsc_and_cpuid").Value & 0b10);   // CPUID (through the GHCB) says hypervisor
        Assert.Equal((ulong)SnpRuntime.ExitIoio, Ghcb(vm, SnpRuntime.GhcbSwExitCode));
        var exit = vm.Call("exit_with", 42);
        Assert.Equal(GuestOutcome.Exit, exit.Outcome);
        Assert.Equal(42, exit.Status);
    }

    [Fact]
    public void A_stack_overflow_faults_on_the_snp_stack_guard_before_it_reaches_the_ghcb()
    {
        using var k = SnpMicroVm.Kernel();
        using var vm = SnpMicroVm.Create(k, Misbehaving.StackOverflowImage());
        var r = vm.Run();
        Assert.Equal(GuestOutcome.Exception, r.Outcome);
        Assert.Equal(14, r.Exception!.Vector);
        Assert.Equal(Layout.SnpStackGuard + 0xFF8, r.Exception.Cr2);
    }
}
