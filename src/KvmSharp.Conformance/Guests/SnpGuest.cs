// SPDX-License-Identifier: MIT
using Iced.Intel;
using KvmSharp.Abi;
using KvmSharp.Memory;
using KvmSharp.Vmm.Arch.X86_64;

namespace KvmSharp.Conformance.Guests;

/// <summary>
/// An SNP guest launched the way a VMM launches one (Documentation/virt/kvm/x86/amd-memory-encryption.rst: KVM_SEV_INIT2,
/// SNP_LAUNCH_START, SNP_LAUNCH_UPDATE of the private initial image, SNP_LAUNCH_FINISH), with its registers set before
/// LAUNCH_FINISH seals them into the VMSA. Slot 0 covers GPA 0 to <see cref="Size"/>: private pages from a guest_memfd,
/// shared pages from <see cref="Shared"/> (6.18's two-backing slot). The image — page tables at <see cref="Pml4"/> …
/// <see cref="Pt"/> (the first 64 KiB mapped 4 KiB at a time), the code at <see cref="Code"/> and <see cref="Data"/>
/// filled with <see cref="PrivateByte"/> — is launched private; <see cref="Shared"/> holds <see cref="SharedByte"/> at
/// <see cref="Data"/>, so a read tells which backing it reached. The guest's PTEs mark encrypted pages with the C-bit
/// (<see cref="CBit"/>), as an SNP Linux guest's do; <see cref="Result"/> (where the programs store what they read) and
/// the alias <see cref="DataSharedAlias"/> of <see cref="Data"/> are mapped without it. After the launch every page is
/// private except <see cref="Result"/>; the cases convert pages with KVM_SET_MEMORY_ATTRIBUTES.
/// </summary>
public sealed class SnpGuest : IDisposable
{
    public const ulong Size = 0x1_0000;
    public const ulong Pml4 = 0x1000, Pdpt = 0x2000, Pd = 0x3000, Pt = 0x4000, Code = 0x5000, Data = 0x6000, Result = 0x7000;

    /// <summary>A linear address mapped to <see cref="Data"/> by a PTE without the C-bit.</summary>
    public const ulong DataSharedAlias = 0x9000;

    public const byte PrivateByte = 0x5a, SharedByte = 0xa5;

    private const ulong Present = 1, Writable = 2;
    private const ulong Page = 0x1000;

    private readonly OwnedResources _owned;

    private SnpGuest(OwnedResources owned, Vm vm, AnonymousMemory shared, Vcpu vcpu, ulong cbit)
    {
        _owned = owned;
        Vm = vm;
        Shared = shared;
        Vcpu = vcpu;
        CBit = cbit;
    }

    public Vm Vm { get; }

    public Vcpu Vcpu { get; }

    /// <summary>The slot's shared backing (userspace_addr), offset = GPA.</summary>
    public AnonymousMemory Shared { get; }

    /// <summary>The C-bit mask the page tables use.</summary>
    public ulong CBit { get; }

    /// <summary>
    /// The C-bit position a VMM takes from KVM_GET_SUPPORTED_CPUID 0x8000001F EBX[5:0] (arch/x86/kvm/cpuid.c
    /// __do_cpuid_func passes it through on an SEV host; QEMU's sev "cbitpos"); 51, the position on current EPYC parts
    /// and the emulator's (Mmu/GuestPhysicalMemory.CbitPosition), when the table does not report the leaf.
    /// </summary>
    public static int CbitPosition(Kvm kvm)
    {
        ArgumentNullException.ThrowIfNull(kvm);
        foreach (var e in kvm.GetSupportedCpuid())
        {
            if (e.Function == 0x8000_001f && (e.Ebx & 0x3f) != 0) return (int)(e.Ebx & 0x3f);
        }
        return 51;
    }

    /// <summary>
    /// Creates and launches the guest. <paramref name="program"/> runs at <see cref="Code"/>: in 64-bit long mode (CR3 =
    /// <see cref="Pml4"/>) unless <paramref name="realMode"/>, then in real mode with CS = DS = 0 (paging off).
    /// <paramref name="codeWithoutCbit"/> maps the code page without the C-bit.
    /// </summary>
    public static SnpGuest Create(Kvm kvm, Action<Assembler> program, bool realMode = false, bool codeWithoutCbit = false)
    {
        ArgumentNullException.ThrowIfNull(kvm);
        ArgumentNullException.ThrowIfNull(program);
        ulong cbit = 1UL << CbitPosition(kvm);
        var owned = new OwnedResources();
        try
        {
            var vm = owned.Add(kvm.CreateVm(VmType.Snp));
            var launch = owned.Add(SnpLaunch.Open(vm));
            launch.Init();
            var gmem = owned.Add(vm.CreateGuestMemfd(Size));
            var shared = owned.Add(vm.AllocateMemory(Size));
            owned.Add(vm.AddPrivateMemorySlot(0, 0, Size, shared, gmem));
            var vcpu = owned.Add(vm.CreateVcpu(0));

            var image = new PinnedArray<byte>((int)Size, (int)Page);
            var bytes = new byte[Size];
            void Entry(ulong at, ulong value) => BitConverter.TryWriteBytes(bytes.AsSpan((int)at, 8), value);
            Entry(Pml4, Pdpt | cbit | Present | Writable);
            Entry(Pdpt, Pd | cbit | Present | Writable);
            Entry(Pd, Pt | cbit | Present | Writable);
            for (ulong page = 0; page < Size; page += Page)
            {
                bool encrypted = page != Result && !(page == Code && codeWithoutCbit);
                Entry(Pt + (page / Page * 8), page | (encrypted ? cbit : 0) | Present | Writable);
            }
            Entry(Pt + (DataSharedAlias / Page * 8), Data | Present | Writable);
            bytes.AsSpan((int)Data, (int)Page).Fill(PrivateByte);
            Assemble(program, realMode ? 16 : 64).CopyTo(bytes, (int)Code);
            bytes.CopyTo(image.Span);
            shared.Fill(Data, Page, SharedByte);

            var sregs = vcpu.GetSregs();
            if (realMode)
            {
                sregs.cs.@base = 0;
                sregs.cs.selector = 0;
                sregs.ds.@base = 0;
                sregs.ds.selector = 0;
            }
            else
            {
                LongMode.Apply(ref sregs);
                sregs.cr3 = Pml4;
            }
            vcpu.SetSregs(sregs);
            var regs = vcpu.GetRegs();
            regs.rip = Code;
            regs.rflags = 2;
            vcpu.SetRegs(regs);

            // SNP_LAUNCH_UPDATE takes private GFNs only (sev.c snp_launch_update → kvm_gmem_populate).
            vm.SetMemoryAttributes(0, Size, KvmConstants.KVM_MEMORY_ATTRIBUTE_PRIVATE);
            launch.Start();
            launch.Update(Pml4 / Page, (nint)(image.Address + Pml4), Data + Page - Pml4);
            GC.KeepAlive(image);
            launch.Finish();
            vm.SetMemoryAttributes(Result, Page, 0);
            return new SnpGuest(owned, vm, shared, vcpu, cbit);
        }
        catch
        {
            owned.Dispose();
            throw;
        }
    }

    /// <summary>Makes [<paramref name="gpa"/>, +4 KiB) private or shared (KVM_SET_MEMORY_ATTRIBUTES).</summary>
    public void SetPrivate(ulong gpa, bool isPrivate) =>
        Vm.SetMemoryAttributes(gpa, Page, isPrivate ? KvmConstants.KVM_MEMORY_ATTRIBUTE_PRIVATE : 0);

    private static byte[] Assemble(Action<Assembler> program, int bitness)
    {
        var asm = new Assembler(bitness);
        program(asm);
        using var stream = new MemoryStream();
        asm.Assemble(new StreamCodeWriter(stream), Code);
        return stream.ToArray();
    }

    public void Dispose() => _owned.Dispose();
}
