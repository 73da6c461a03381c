// SPDX-License-Identifier: MIT
using Iced.Intel;
using KvmSharp.Vmm.Arch.X86_64;
using KvmSharp.Vmm.GuestAbi;
using KvmSharp.Vmm.Guests;
using KvmSharp.Vmm.Loader;
using KvmSharp.Vmm.Tests.Infrastructure;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Vmm.Tests;

/// <summary>
/// A CPU exception in the guest reaches the VMM's IDT and handler and ends the call as <see cref="GuestOutcome.Exception"/>
/// with the vector, error code, CR2 and the faulting RIP — on both kernels, in both kinds of guest memory.
/// </summary>
public sealed class ExceptionTests
{
    private const ulong Rf = 1UL << 16, If = 1UL << 9;

    /// <summary>What each faulting guest must report: vector, error code, CR2 (null where the vector has none).</summary>
    private static readonly Dictionary<string, (Func<GuestImage> Image, int Vector, ulong? ErrorCode, ulong? Cr2)> Faulting = new()
    {
        ["divide"] = (Misbehaving.DivideErrorImage, 0, null, null),
        ["ud"] = (Misbehaving.InvalidOpcodeImage, 6, null, null),
        ["pagefault"] = (Misbehaving.PageFaultImage, 14, 0x2, Misbehaving.UnmappedAddress),
        ["null-write"] = (Misbehaving.NullWriteImage, 14, 0x2, 0x0),
        ["general-protection"] = (Misbehaving.GeneralProtectionImage, 13, 0x0, null),
    };

    public static TheoryData<string, string, GuestMemoryBacking> GuestsKernelsAndBackings()
    {
        var data = new TheoryData<string, string, GuestMemoryBacking>();
        foreach (string guest in Faulting.Keys)
        {
            foreach (var row in TestKernel.KernelsAndBackings)
                data.Add(guest, (string)row[0], (GuestMemoryBacking)row[1]);
        }
        return data;
    }

    [SkippableTheory]
    [MemberData(nameof(GuestsKernelsAndBackings))]
    public void An_exception_is_reported_with_its_vector_error_code_cr2_and_faulting_rip(string guest, string kernel, GuestMemoryBacking backing)
    {
        var (imageOf, vector, errorCode, cr2) = Faulting[guest];
        using var k = TestKernel.Open(kernel);
        GuestImage image = imageOf();
        ulong fault = image.Resolve(Misbehaving.FaultSymbol);
        using var vm = MicroVm.Create(image, k.Options(backing));

        CallResult r = vm.Run();

        Assert.Equal(GuestOutcome.Exception, r.Outcome);
        GuestException e = Assert.IsType<GuestException>(r.Exception);
        Assert.Equal((vector, errorCode, cr2), (e.Vector, e.ErrorCode, e.Cr2));
        Assert.Equal(fault, e.Rip);
        Assert.Equal(fault, r.Rip);
        // The rest of the frame: the flat segments, the guest's own stack (entered at StackTop - 8, nothing pushed),
        // interrupts off as the guest runs them, and RF, which KVM sets when it injects a fault (kvm_inject_exception).
        Assert.Equal((Gdt.CodeSelector, Gdt.DataSelector, Layout.StackTop - 8), (e.Cs, e.Ss, e.Rsp));
        Assert.Equal((Rf | 0x2, 0UL), (e.Rflags & (Rf | 0x2), e.Rflags & If));
        Assert.Equal(e.ToString(), r.Detail);
        Assert.StartsWith($"{e.Name} ({e.Mnemonic}) at rip 0x{fault:X}", r.Detail, StringComparison.Ordinal);
        // One exit (the handler's OUT to the exception port), and nothing of a normal ending.
        Assert.Equal(1, r.Exits);
        Assert.Equal((-1, (ulong?)null, ""), (r.Status, r.Value, r.Console));
        Assert.True(vm.IsFaulted);
        Assert.Throws<MicroVmException>(() => vm.Run());
    }

    [SkippableTheory]
    [MemberData(nameof(TestKernel.KernelsAndBackings), MemberType = typeof(TestKernel))]
    public void A_page_fault_reports_cr2_and_the_error_code_in_words(string kernel, GuestMemoryBacking backing)
    {
        using var k = TestKernel.Open(kernel);
        GuestImage image = Misbehaving.PageFaultImage();
        using var vm = MicroVm.Create(image, k.Options(backing));
        CallResult r = vm.Run();
        Assert.Equal(
            $"page fault (#PF) at rip 0x{image.Resolve(Misbehaving.FaultSymbol):X}: cr2 0xDEAD0000, error code 0x2 (write, not present)",
            r.Detail);
    }

    /// <summary>
    /// The guest recurses until its stack reaches the guard page. The #PF is delivered on the exception stack (IST1 of
    /// the TSS); on the guest's own stack, pushing the frame would fault again (#DF, then a triple fault).
    /// </summary>
    [SkippableTheory]
    [MemberData(nameof(TestKernel.KernelsAndBackings), MemberType = typeof(TestKernel))]
    public void A_stack_overflow_is_a_page_fault_on_the_stack_guard(string kernel, GuestMemoryBacking backing)
    {
        using var k = TestKernel.Open(kernel);
        GuestImage image = Misbehaving.StackOverflowImage();
        // 16 Ki calls: on this host's kvm_pvm (≈1.5 µs an instruction, a fault per new stack page) well under a second.
        using var vm = MicroVm.Create(image, k.Options(backing, GuestRun.Quick with { Timeout = TimeSpan.FromSeconds(20) }));
        CallResult r = vm.Run();
        Assert.True(r.Outcome == GuestOutcome.Exception, r.ToString());
        GuestException e = r.Exception!;
        // The CALL at the bottom of the stack could not push its return address into the guard page.
        Assert.Equal((14, 0x2UL, Layout.StackBottom - 8), (e.Vector, e.ErrorCode, e.Cr2));
        Assert.Equal((image.Resolve(Misbehaving.FaultSymbol), Layout.StackBottom), (e.Rip, e.Rsp));
    }

    /// <summary>
    /// The control for the test above: the same overflow with gates that use the current stack (IST 0) is a triple
    /// fault. So the kernel honours IST1 of the TSS loaded through KVM_SET_SREGS (this host's kvm_pvm does).
    /// </summary>
    [SkippableTheory]
    [MemberData(nameof(TestKernel.Kernels), MemberType = typeof(TestKernel))]
    public void Without_the_exception_stack_a_stack_overflow_is_a_triple_fault(string kernel)
    {
        using var k = TestKernel.Open(kernel);
        GuestImage image = Misbehaving.StackOverflowImage();
        using var vm = MicroVm.Create(image, k.Options(backing: null, GuestRun.Quick with { Timeout = TimeSpan.FromSeconds(20) }));
        for (int vector = 0; vector < Idt.Vectors; vector++)
        {
            (ulong low, ulong high) = Idt.Gate(ExceptionHandlers.Stub(vector), Gdt.CodeSelector, ist: 0);
            vm.Memory.Write(Layout.Idt + (ulong)vector * 16, low);
            vm.Memory.Write(Layout.Idt + (ulong)vector * 16 + 8, high);
        }
        CallResult r = vm.Run();
        Assert.Equal(GuestOutcome.Shutdown, r.Outcome);
        Assert.Equal(image.Resolve(Misbehaving.FaultSymbol), r.Rip);
    }

    [SkippableTheory]
    [MemberData(nameof(TestKernel.Kernels), MemberType = typeof(TestKernel))]
    public void An_exception_with_a_wild_stack_pointer_is_still_reported(string kernel)
    {
        // No stack at all: RSP in unmapped memory. The handlers do not need it (IST1).
        var p = new GuestProgram();
        Label start = p.Export("_start"), fault = p.Export(Misbehaving.FaultSymbol);
        p.Place(ref start);
        p.Asm.mov(rsp, Misbehaving.UnmappedAddress);
        p.Place(ref fault);
        p.Asm.ud2();
        GuestImage image = p.Build(start);
        using var k = TestKernel.Open(kernel);
        using var vm = MicroVm.Create(image, k.Options(backing: null));
        CallResult r = vm.Run();
        Assert.Equal(GuestOutcome.Exception, r.Outcome);
        Assert.Equal((6, Misbehaving.UnmappedAddress), (r.Exception!.Vector, r.Exception.Rsp));
        Assert.Equal(image.Resolve(Misbehaving.FaultSymbol), r.Rip);
    }

    [SkippableTheory]
    [MemberData(nameof(TestKernel.KernelsAndBackings), MemberType = typeof(TestKernel))]
    public void Reset_after_an_exception_makes_the_micro_vm_usable_and_the_next_report_fresh(string kernel, GuestMemoryBacking backing)
    {
        using var k = TestKernel.Open(kernel);
        using var vm = MicroVm.Create(Sum.Image(), k.Options(backing));
        Assert.Equal(3UL, vm.Call("add", 1, 2).Value);
        // Two rounds: the first reset of host memory is a full one, the second rewrites only the pages changed.
        foreach (ulong address in new ulong[] { 0x10, 0x20 })
        {
            CallResult r = vm.CallAddress(address); // a fetch from the unmapped page 0
            Assert.Equal(GuestOutcome.Exception, r.Outcome);
            Assert.Equal((14, address, address), (r.Exception!.Vector, r.Exception.Cr2, r.Rip));
            Assert.True(vm.IsFaulted);
            Assert.Throws<MicroVmException>(() => vm.Call("add", 1, 2));

            vm.Reset();

            Assert.False(vm.IsFaulted);
            // The handler's traces are gone with the rest of the guest's writes.
            Assert.All(vm.Memory.GetSpan(ExceptionBlock.Base, ExceptionBlock.Size).ToArray(), b => Assert.Equal(0, b));
            CallResult add = vm.Call("add", 3, 4);
            Assert.True(add.IsSuccess, add.ToString());
            Assert.Equal(7UL, add.Value);
            Assert.Null(add.Exception);
        }
    }

    [SkippableTheory]
    [MemberData(nameof(TestKernel.Kernels), MemberType = typeof(TestKernel))]
    public void The_boot_state_holds_the_idt_the_tss_and_the_handlers(string kernel)
    {
        using var k = TestKernel.Open(kernel);
        using var vm = MicroVm.Create(Hello.Image(), k.Options(backing: null));
        var sregs = vm.Vcpu.GetSregs();
        Assert.Equal((Layout.Idt, Idt.Limit), (sregs.idt.@base, sregs.idt.limit));
        Assert.Equal((Gdt.TssSelector, Layout.Tss, Tss.Limit, (byte)0xB), (sregs.tr.selector, sregs.tr.@base, sregs.tr.limit, sregs.tr.type));
        Assert.Equal(Idt.Bytes.ToArray(), vm.Memory.GetSpan(Layout.Idt, Idt.Bytes.Length).ToArray());
        Assert.Equal(ExceptionHandlers.Bytes.ToArray(), vm.Memory.GetSpan(Layout.ExceptionHandlers, ExceptionHandlers.Bytes.Length).ToArray());
        Assert.Equal(Layout.ExceptionStackTop, vm.Memory.Read<ulong>(Layout.Tss + Tss.Ist1));
        Assert.Equal(5u, vm.Memory.Read<uint>(CallRegion.Address(CallRegion.Version)));
    }
}
