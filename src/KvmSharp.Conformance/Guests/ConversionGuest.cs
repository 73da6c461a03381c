// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Emulation;
using Xunit;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Conformance.Guests;

/// <summary>
/// The fixture of x86/guest_memfd_conversions_test.c ("[PATCH v8] guest_memfd: In-place conversion support",
/// gmem_conversions_do_setup + guest_do_rmw): a KVM_X86_SW_PROTECTED_VM with one vCPU and a guest_memfd of
/// <c>nr_pages</c> pages (MMAP | the test's flags) bound as slot 1; <see cref="Mem"/> is the host mapping of that
/// file used as the slot's userspace_addr (upstream: <c>t->mem = addr_gpa2hva(vm, gpa)</c>).
/// <para>
/// Deviation, same path: upstream runs a 64-bit guest that reaches the slot at GPA 4 GiB through GVA 0x90000000.
/// Here a real-mode guest (code + mailbox in a separate shared guest_memfd at <see cref="CodeGpa"/>) reaches the
/// data slot at <see cref="DataGpa"/> through a segment; the guest loop is the same: read the byte at the page,
/// compare with expected_val (GUEST_ASSERT_EQ → port <see cref="FailPort"/> with the byte seen), write write_val,
/// GUEST_SYNC (→ port <see cref="DonePort"/>). On SW_PROTECTED VMs the access is private or shared as the page's
/// current guest_memfd attribute says.
/// </para>
/// </summary>
public sealed class ConversionGuest : IDisposable
{
    public const ulong CodeGpa = 0x10000;
    public const ulong DataGpa = 0x20000;
    public const byte DonePort = 0x10;
    public const byte FailPort = 0x11;

    /// <summary>Mailbox in the code page: u16 byte offset into the data slot, u8 expected_val, u8 write_val.</summary>
    private const ushort Mailbox = 0x800;
    private const uint CodeSlotId = 0;
    private const uint DataSlotId = 1;

    private readonly OwnedResources _owned;
    private readonly GuestMapping _codeMap;

    private ConversionGuest(OwnedResources owned, Vm vm, Vcpu vcpu, GuestMapping codeMap, GuestMemfd memfd, GuestMapping mem, int nrPages)
    {
        _owned = owned;
        _codeMap = codeMap;
        Vm = vm;
        Vcpu = vcpu;
        Memfd = memfd;
        Mem = mem;
        NrPages = nrPages;
    }

    public Vm Vm { get; }

    public Vcpu Vcpu { get; }

    /// <summary>t->gmem_fd: the guest_memfd under test.</summary>
    public GuestMemfd Memfd { get; }

    /// <summary>t->mem: the host mapping of the whole file (also the slot's userspace_addr).</summary>
    public GuestMapping Mem { get; }

    public int NrPages { get; }

    public static int PageSize => Environment.SystemPageSize;

    /// <summary>The emulator behind this guest, or null on the real kernel.</summary>
    public EmulatedKernel? Emulator => Vm.Kernel as EmulatedKernel;

    /// <summary>
    /// gmem_conversions_do_setup(t, nr_pages, flags | GUEST_MEMFD_FLAG_MMAP). The caller checked the VM type and
    /// KVM_CAP_GUEST_MEMFD_MEMORY_ATTRIBUTES (see <c>GuestMemfdConversionsTest</c>).
    /// </summary>
    public static ConversionGuest Create(Kvm kvm, int nrPages, GuestMemfdFlags flags)
    {
        ArgumentNullException.ThrowIfNull(kvm);
        if ((ulong)nrPages * (ulong)PageSize > ushort.MaxValue + 1UL)
            throw new ArgumentOutOfRangeException(nameof(nrPages), "a real-mode segment reaches 64 KiB of the data slot");
        var owned = new OwnedResources();
        try
        {
            var vm = owned.Add(kvm.CreateVm(VmType.SwProtected));
            ulong codeSize = (ulong)PageSize;
            var code = owned.Add(vm.CreateGuestMemfd(codeSize, GuestMemfdFlags.Mmap | GuestMemfdFlags.InitShared));
            var codeMap = owned.Add(code.Map());
            codeMap.Write(0, RealModeGuest.Assemble(Program));
            owned.Add(vm.AddGuestMemfdSlot(CodeSlotId, CodeGpa, codeSize, code, userspace: codeMap));

            ulong size = (ulong)nrPages * (ulong)PageSize;
            var memfd = owned.Add(vm.CreateGuestMemfd(size, flags | GuestMemfdFlags.Mmap));
            var mem = owned.Add(memfd.Map());
            owned.Add(vm.AddGuestMemfdSlot(DataSlotId, DataGpa, size, memfd, userspace: mem));

            var vcpu = owned.Add(vm.CreateVcpu(0));
            var sregs = vcpu.GetSregs();
            sregs.cs.@base = CodeGpa;
            sregs.cs.selector = (ushort)(CodeGpa >> 4);
            vcpu.SetSregs(sregs);
            vcpu.SetRegs(new kvm_regs { rip = 0, rflags = 2 });
            return new ConversionGuest(owned, vm, vcpu, codeMap, memfd, mem, nrPages);
        }
        catch
        {
            owned.Dispose();
            throw;
        }
    }

    /// <summary>guest_do_rmw's loop in 16-bit code; DS switches between the code segment and the data slot.</summary>
    private static void Program(Iced.Intel.Assembler a)
    {
        var top = a.CreateLabel();
        var fail = a.CreateLabel();
        a.Label(ref top);
        a.mov(ax, (ushort)(CodeGpa >> 4));
        a.mov(ds, ax);
        a.mov(bx, __word_ptr[Mailbox]);
        a.mov(cl, __byte_ptr[Mailbox + 2]);
        a.mov(dl, __byte_ptr[Mailbox + 3]);
        a.mov(ax, (ushort)(DataGpa >> 4));
        a.mov(ds, ax);
        a.mov(al, __byte_ptr[bx]);
        a.cmp(al, cl);
        a.jne(fail);
        a.mov(__byte_ptr[bx], dl);
        a.@out(DonePort, al);
        a.jmp(top);
        a.Label(ref fail);
        a.@out(FailPort, al);
        a.jmp(top);
    }

    /// <summary>
    /// run_guest_do_rmw(vcpu, pgoff, expected_val, write_val): the guest reads the first byte of page
    /// <paramref name="pgoff"/>, asserts it is <paramref name="expected"/>, writes <paramref name="write"/>.
    /// </summary>
    public void RunGuestDoRmw(ulong pgoff, byte expected, byte write)
    {
        ulong offset = pgoff * (ulong)PageSize;
        _codeMap.Write(Mailbox, (ushort)offset);
        _codeMap.Write<byte>(Mailbox + 2, expected);
        _codeMap.Write<byte>(Mailbox + 3, write);
        VcpuExit exit;
        // do { r = __vcpu_run(vcpu); } while (r == -1 && errno == EINTR);
        do
        {
            exit = Vcpu.Run();
        }
        while (exit.Interrupted);
        Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_IO && exit.IoIsOut,
            $"guest rmw of page {pgoff}: expected the guest's sync port, got {exit.ToString()}");
        if (exit.IoPort == FailPort)
            Assert.Fail($"guest rmw of page {pgoff}: guest read 0x{exit.IoData[0]:X2}, expected 0x{expected:X2}");
        Assert.Equal(DonePort, exit.IoPort);
    }

    public void Dispose() => _owned.Dispose();
}
