// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using Iced.Intel;
using KvmSharp.Vmm.Arch.X86_64;
using KvmSharp.Vmm.Confidential;
using KvmSharp.Vmm.Tests.Infrastructure;

namespace KvmSharp.Vmm.Tests;

/// <summary>
/// The SNP micro-VM's guest runtime (Arch/X86_64/SnpRuntime) and its place in the layout, checked without a VM: the GHCB
/// page at <see cref="Layout.Ghcb"/> (shared, no C-bit, below the SNP stack guard), the IDT's vector 29 to the #VC
/// handler, and the code's shape. The runtime's behaviour — every OUT and IN of an SNP micro-VM served through the GHCB
/// and VMGEXIT — is tested on the emulator (tests/KvmSharp.Emulation.Tests/SnpVcTests.cs), the only kernel here with SNP.
/// </summary>
public sealed class SnpRuntimeTests
{
    private const ulong CBit = 1UL << 51;

    /// <summary>Host memory of a VM on the emulated kernel: the VMM's pages are written into it as for a micro-VM.</summary>
    private static (TestKernel, Vm, GuestMemory) Memory()
    {
        var k = TestKernel.Emulated();
        Vm vm = k.Kvm.CreateVm();
        return (k, vm, GuestMemory.Create(vm, Layout.MinMemorySize, GuestMemoryBacking.HostMemory));
    }

    private static List<Instruction> Decode(ReadOnlySpan<byte> code, ulong at)
    {
        var decoder = Decoder.Create(64, new ByteArrayCodeReader(code.ToArray()), at);
        var list = new List<Instruction>();
        while (decoder.IP < at + (ulong)code.Length) list.Add(decoder.Decode());
        return list;
    }

    [Fact]
    public void The_ghcb_page_lies_below_the_snp_stack_guard_and_is_shared_only_in_an_snp_micro_vm()
    {
        Assert.Equal(0UL, Layout.Ghcb % Layout.PageSize);
        Assert.Equal(Layout.StackGuard, Layout.Ghcb);
        Assert.Equal(Layout.Ghcb + Layout.PageSize, Layout.SnpStackGuard);
        Assert.Equal(Layout.SnpStackGuard + Layout.PageSize, Layout.SnpStackBottom);
        Assert.True(Layout.IsSnpGuardPage(Layout.SnpStackGuard) && Layout.IsSnpGuardPage(Layout.NullGuard));
        Assert.False(Layout.IsSnpGuardPage(Layout.Ghcb));
        Assert.True(Layout.IsGuardPage(Layout.StackGuard));

        Assert.True(SealedGuest.IsShared(Layout.Ghcb, VmType.Snp));
        Assert.False(SealedGuest.IsShared(Layout.Ghcb, VmType.Tdx));
        Assert.False(SealedGuest.IsShared(Layout.SnpStackGuard, VmType.Snp));
        const ulong Size = 4 * Layout.LargePageSize;
        Assert.DoesNotContain(SealedGuest.PrivateRanges(Size, VmType.Snp), r => r.Start <= Layout.Ghcb && Layout.Ghcb < r.End);
        Assert.Contains(SealedGuest.PrivateRanges(Size, VmType.Tdx), r => r.Start <= Layout.Ghcb && Layout.Ghcb < r.End);
        // Every byte is either private or shared, once.
        ulong covered = SealedGuest.PrivateRanges(Size, VmType.Snp).Concat(SealedGuest.SnpSharedRanges).Aggregate(0UL, (sum, r) => sum + (r.End - r.Start));
        Assert.Equal(Size, covered);
    }

    [Fact]
    public void Snp_page_tables_map_the_ghcb_without_the_cbit_and_leave_the_snp_stack_guard_out()
    {
        var (k, vm, memory) = Memory();
        using var kernel = k;
        using var owner = vm;
        using var mapped = memory;
        PageTables.Write(memory, CBit);
        ulong Pte(ulong gpa) => memory.Read<ulong>(Layout.Pt + gpa / Layout.PageSize * 8);
        Assert.Equal(Layout.Ghcb | PageTables.Present | PageTables.Writable, Pte(Layout.Ghcb));
        Assert.Equal(0UL, Pte(Layout.SnpStackGuard));
        Assert.Equal(0UL, Pte(Layout.NullGuard));
        Assert.Equal(CBit, Pte(Layout.SnpStackBottom) & CBit);
        Assert.Equal(CBit, Pte(Layout.Trampoline) & CBit);

        // Other micro-VMs keep the stack guard at 0x7000 and the stack from 0x8000.
        using var otherVm = kernel.Kvm.CreateVm();
        using var plain = GuestMemory.Create(otherVm, Layout.MinMemorySize, GuestMemoryBacking.HostMemory);
        PageTables.Write(plain);
        Assert.Equal(0UL, plain.Read<ulong>(Layout.Pt + Layout.StackGuard / Layout.PageSize * 8));
        Assert.Equal(Layout.StackBottom | PageTables.Present | PageTables.Writable, plain.Read<ulong>(Layout.Pt + Layout.StackBottom / Layout.PageSize * 8));
    }

    [Fact]
    public void The_snp_idt_sends_vector_29_to_the_vc_handler_on_ist1_and_the_rest_to_the_vmm_stubs()
    {
        ReadOnlySpan<byte> table = SnpRuntime.IdtBytes;
        Assert.Equal(Idt.Vectors * 16, table.Length);
        for (int vector = 0; vector < Idt.Vectors; vector++)
        {
            ulong low = BinaryPrimitives.ReadUInt64LittleEndian(table[(vector * 16)..]);
            ulong high = BinaryPrimitives.ReadUInt64LittleEndian(table[(vector * 16 + 8)..]);
            ulong expected = vector == SnpRuntime.VmmCommunicationException ? SnpRuntime.VcHandler : ExceptionHandlers.Stub(vector);
            Assert.Equal(expected, Idt.GateTarget(low, high));
            Assert.Equal((ulong)Idt.Ist, (low >> 32) & 7);
        }
        Assert.True(Idt.HasErrorCode(SnpRuntime.VmmCommunicationException));
    }

    [Fact]
    public void Boot_memory_of_an_snp_micro_vm_holds_the_runtime_and_its_idt()
    {
        var (k, vm, memory) = Memory();
        using var kernel = k;
        using var owner = vm;
        using var mapped = memory;
        BootMemory.Write(memory, CBit);
        Assert.Equal(SnpRuntime.IdtBytes.ToArray(), memory.GetSpan(Layout.Idt, SnpRuntime.IdtBytes.Length).ToArray());
        Assert.Equal(SnpRuntime.Bytes.ToArray(), memory.GetSpan(SnpRuntime.Base, SnpRuntime.Bytes.Length).ToArray());
        Assert.Equal(SnpDispatcher.Bytes.ToArray(), memory.GetSpan(Layout.Trampoline, SnpDispatcher.Bytes.Length).ToArray());
        Assert.Equal(memory.Size, memory.Read<ulong>(SnpDispatcher.EntryLimit));
        Assert.Equal(0, memory.Read<byte>(SnpRuntime.Busy));
        Assert.True(SnpRuntime.Busy >= Layout.Tss + (ulong)Tss.Limit + 1 && SnpRuntime.Busy < Layout.Idt + Layout.PageSize);
        // The GHCB page is left zero: the guest fills it.
        Assert.All(memory.GetSpan(Layout.Ghcb, (int)Layout.PageSize).ToArray(), b => Assert.Equal(0, b));
    }

    [Fact]
    public void The_runtime_fits_between_the_dispatcher_and_the_entry_limit()
    {
        Assert.True((ulong)SnpDispatcher.Bytes.Length <= SnpRuntime.Base - Layout.Trampoline);
        Assert.True(SnpRuntime.Base + (ulong)SnpRuntime.Bytes.Length <= SnpDispatcher.EntryLimit);
        Assert.InRange(SnpRuntime.Start, SnpRuntime.Base, SnpDispatcher.EntryLimit - 1);
        Assert.InRange(SnpRuntime.VcHandler, SnpRuntime.Base, SnpDispatcher.EntryLimit - 1);
    }

    [Fact]
    public void Start_registers_the_ghcb_with_the_msr_protocol_before_it_enters_the_dispatcher()
    {
        var code = Decode(SnpRuntime.Bytes, SnpRuntime.Base);
        int first = code.FindIndex(i => i.IP == SnpRuntime.Start);
        Assert.True(first >= 0);
        var start = code.Skip(first).TakeWhile(i => i.Mnemonic != Mnemonic.Jmp || i.Op0Kind != OpKind.Register).ToList();
        // Three MSR protocol requests (SEV_INFO, HV_FT, REG_GPA of the GHCB), each a WRMSR then VMGEXIT, then the MSR = the GHCB.
        Assert.Equal(3, start.Count(i => i.Mnemonic == Mnemonic.Vmgexit));
        Assert.Equal(4, start.Count(i => i.Mnemonic == Mnemonic.Wrmsr));
        ulong[] requests = [.. start.Where(i => i.Mnemonic == Mnemonic.Mov && i.Op0Register == Register.EAX && i.Op1Kind == OpKind.Immediate32)
            .Select(i => (ulong)i.Immediate32)];
        Assert.Equal([SnpRuntime.SevInfoReq, SnpRuntime.HvFeaturesReq, Layout.Ghcb | SnpRuntime.RegisterGpaReq, Layout.Ghcb], requests);
        Assert.Contains(start, i => i.Mnemonic == Mnemonic.Mov && i.Op0Register == Register.RAX && i.Immediate64 == SnpDispatcher.Dispatch);
    }

    [Fact]
    public void The_vc_handler_asks_with_vmgexit_and_returns_with_iretq()
    {
        var code = Decode(SnpRuntime.Bytes, SnpRuntime.Base);
        var handler = code.SkipWhile(i => i.IP != SnpRuntime.VcHandler).ToList();
        Assert.NotEmpty(handler);
        Assert.Contains(handler, i => i.Mnemonic == Mnemonic.Vmgexit);
        Assert.Contains(handler, i => i.Mnemonic == Mnemonic.Iretq);
        // Unserved events go to the VMM's stub of vector 29, a #GP the hypervisor asks for to the stub of 13.
        Assert.Contains(handler, i => i.FlowControl == FlowControl.UnconditionalBranch && i.NearBranchTarget == ExceptionHandlers.Stub(29));
        Assert.Contains(handler, i => i.FlowControl == FlowControl.UnconditionalBranch && i.NearBranchTarget == ExceptionHandlers.Stub(13));
        Assert.Equal(0x100UL | 1 << 12, SnpRuntime.TerminationRequest(SnpRuntime.TermSetLinux, SnpRuntime.TermRegister));
        Assert.Equal(0x100UL | 2 << 16, SnpRuntime.TerminationRequest(SnpRuntime.TermSetGeneral, SnpRuntime.TermSnpUnsupported));
    }
}
