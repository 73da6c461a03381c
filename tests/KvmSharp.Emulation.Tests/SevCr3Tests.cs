// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Conformance.Guests;
using KvmSharp.Emulation.Mmu;
using KvmSharp.Kernel;
using KvmSharp.Vmm.Arch.X86_64;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// The CR3 C-bit rule below the conformance cases (src/KvmSharp.Conformance/Cases/SevCr3.cs): vcpu->arch.reserved_gpa_bits
/// (X86/SregsRules.ReservedGpaBits) spares the C-bit only for a VM that KVM_SEV_INIT2 made an SEV guest (sev_guest(kvm):
/// SEV, SEV-ES and SNP alike) and only the bit its vCPU's CPUID 0x8000001F names (svm.c svm_vcpu_after_set_cpuid); an
/// SNP guest's own MOV CR3 may set it and its walk stays private.
/// </summary>
public sealed class SevCr3Tests
{
    private const ulong CBit = 1UL << GuestPhysicalMemory.CbitPosition;

    private sealed class Setup : IDisposable
    {
        private readonly EmulatedKernel _k;
        private readonly IDisposable? _launch;

        public Setup(VmType type, bool init)
        {
            _k = new EmulatedKernel(EmulatorConfig.X86_64());
            Kvm = Kvm.Open(_k, proposals: _k.Config.Proposals);
            Vm = Kvm.CreateVm(type);
            if (init)
            {
                if (type == VmType.Snp)
                {
                    var snp = SnpLaunch.Open(Vm);
                    snp.Init();
                    _launch = snp;
                }
                else
                {
                    var sev = SevLaunch.Open(Vm);
                    sev.Init();
                    _launch = sev;
                }
            }
            Vcpu = Vm.CreateVcpu(0);
        }

        public Kvm Kvm { get; }

        public Vm Vm { get; }

        public KvmSharp.Vcpu Vcpu { get; }

        /// <summary>KVM_SET_SREGS in long mode with <paramref name="cr3"/>: 0 or the errno.</summary>
        public Errno SetCr3(ulong cr3)
        {
            var sregs = Vcpu.GetSregs();
            LongMode.Apply(ref sregs);
            sregs.cr3 = cr3;
            try
            {
                Vcpu.SetSregs(sregs);
                return 0;
            }
            catch (KvmException e)
            {
                return e.Errno;
            }
        }

        public void Dispose()
        {
            Vcpu.Dispose();
            _launch?.Dispose();
            Vm.Dispose();
            Kvm.Dispose();
            _k.Dispose();
        }
    }

    [Theory]
    [InlineData(VmType.Sev)]
    [InlineData(VmType.SevEs)]
    [InlineData(VmType.Snp)]
    public void An_sev_guest_with_the_cpuid_leaf_takes_a_cbit_cr3(VmType type)
    {
        using var s = new Setup(type, init: true);
        Assert.Equal(Errno.EINVAL, s.SetCr3(0x1000 | CBit));
        s.Vcpu.SetCpuid(s.Kvm.GetSupportedCpuid());
        Assert.Equal((Errno)0, s.SetCr3(0x1000 | CBit));
        Assert.Equal(0x1000 | CBit, s.Vcpu.GetSregs().cr3);
        // Only the C-bit is spared: bit 50 stays above MAXPHYADDR (48).
        Assert.Equal(Errno.EINVAL, s.SetCr3(0x1000 | CBit | (1UL << 50)));
    }

    [Theory]
    [InlineData(VmType.Sev)]
    [InlineData(VmType.Snp)]
    public void An_sev_type_vm_before_init2_is_not_an_sev_guest(VmType type)
    {
        // sev_guest(kvm) is sev->active, which KVM_SEV_INIT2 sets; until then the C-bit is an ordinary reserved bit.
        using var s = new Setup(type, init: false);
        s.Vcpu.SetCpuid(s.Kvm.GetSupportedCpuid());
        Assert.Equal(Errno.EINVAL, s.SetCr3(0x1000 | CBit));
        Assert.Equal((Errno)0, s.SetCr3(0x1000 | (1UL << 47)));
    }

    [Theory]
    [InlineData(VmType.Default)]
    [InlineData(VmType.SwProtected)]
    public void Other_vm_types_keep_the_cbit_reserved_whatever_their_cpuid(VmType type)
    {
        using var s = new Setup(type, init: false);
        var table = s.Kvm.GetSupportedCpuid();
        Assert.Contains(table, e => e.Function == 0x8000_001f);
        s.Vcpu.SetCpuid(table);
        Assert.Equal(Errno.EINVAL, s.SetCr3(0x1000 | CBit));
    }

    [Fact]
    public void The_spared_bit_is_the_one_the_vcpu_cpuid_names()
    {
        using var s = new Setup(VmType.Sev, init: true);
        // MAXPHYADDR 40 and a C-bit at 45 in the vCPU's own table: bit 45 is spared, bits 44 and 51 are reserved.
        var table = s.Kvm.GetSupportedCpuid().Select(e => e.Function switch
        {
            0x8000_0008 => e with { Eax = (e.Eax & ~0xffu) | 40 },
            0x8000_001f => e with { Ebx = 45 },
            _ => e,
        }).ToList();
        s.Vcpu.SetCpuid(table);
        Assert.Equal((Errno)0, s.SetCr3(0x1000 | (1UL << 45)));
        Assert.Equal(Errno.EINVAL, s.SetCr3(0x1000 | (1UL << 44)));
        Assert.Equal(Errno.EINVAL, s.SetCr3(0x1000 | CBit));
    }

    [Fact]
    public void An_snp_guest_sets_the_cbit_in_cr3_and_still_reads_its_private_data()
    {
        using var k = new EmulatedKernel(EmulatorConfig.X86_64());
        using var kvm = Kvm.Open(k, proposals: k.Config.Proposals);
        using var g = SnpGuest.Create(kvm, a =>
        {
            a.mov(rax, cr3);
            a.mov(rbx, unchecked((long)CBit));
            a.or(rax, rbx);
            a.mov(cr3, rax);
            a.mov(rax, (long)SnpGuest.Data);
            a.mov(rax, __qword_ptr[rax]);
            a.mov(rbx, (long)SnpGuest.Result);
            a.mov(__qword_ptr[rbx], rax);
            a.hlt();
        });
        // KVM_SET_CPUID2 is not part of the protected state: the vCPU gets the leaf after LAUNCH_FINISH.
        g.Vcpu.SetCpuid(kvm.GetSupportedCpuid());
        Assert.Equal(KvmExitReason.KVM_EXIT_HLT, g.Vcpu.RunBounded().Reason);
        Assert.Equal(0x0101_0101_0101_0101UL * SnpGuest.PrivateByte, g.Shared.Read<ulong>(SnpGuest.Result));
    }

    [Fact]
    public void An_snp_walk_from_a_cbit_cr3_reads_the_pml4_at_its_gpa_privately()
    {
        using var k = new EmulatedKernel(EmulatorConfig.X86_64());
        using var kvm = Kvm.Open(k, proposals: k.Config.Proposals);
        using var g = SnpGuest.Create(kvm, a =>
        {
            a.mov(rax, cr3);
            a.mov(rbx, unchecked((long)CBit));
            a.or(rax, rbx);
            a.mov(cr3, rax);
            a.hlt(); // an automatic exit: an OUT would be a #VC in this protected SNP vCPU (X86Emulator.SevEs.cs)
            a.hlt();
        });
        g.Vcpu.SetCpuid(kvm.GetSupportedCpuid());
        Assert.Equal(KvmExitReason.KVM_EXIT_HLT, g.Vcpu.RunBounded().Reason);
        // CR3 now carries the C-bit. With the PML4's page made shared, the next fetch walks from it and stops with a
        // private memory fault at the PML4's GPA (the C-bit stripped; the walk's reads are encrypted).
        g.SetPrivate(SnpGuest.Pml4, false);
        var exit = g.Vcpu.RunBounded();
        Assert.Equal(KvmExitReason.KVM_EXIT_MEMORY_FAULT, exit.Reason);
        Assert.Equal((SnpGuest.Pml4, true), (exit.MemoryFaultGpa, exit.MemoryFaultIsPrivate));
        g.SetPrivate(SnpGuest.Pml4, true);
        Assert.Equal(KvmExitReason.KVM_EXIT_HLT, g.Vcpu.RunBounded().Reason);
    }

    [Fact]
    public void Mov_cr3_with_the_cbit_is_gp_in_an_sev_guest_without_the_cpuid_leaf()
    {
        using var k = new EmulatedKernel(EmulatorConfig.X86_64());
        using var kvm = Kvm.Open(k, proposals: k.Config.Proposals);
        using var g = SnpGuest.Create(kvm, a =>
        {
            a.mov(rax, cr3);
            a.mov(rbx, unchecked((long)CBit));
            a.or(rax, rbx);
            a.mov(cr3, rax);
            a.hlt();
        });
        // No KVM_SET_CPUID2: MAXPHYADDR 36 and no leaf 0x8000001F — #GP, and without an IDT a triple fault.
        Assert.Equal(KvmExitReason.KVM_EXIT_SHUTDOWN, g.Vcpu.RunBounded().Reason);
    }
}
