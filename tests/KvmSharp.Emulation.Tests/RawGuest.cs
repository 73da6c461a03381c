// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using Iced.Intel;
using KvmSharp.Abi;
using KvmSharp.Kernel;
using KvmSharp.Memory;
using static KvmSharp.Kernel.LinuxConstants;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// A VM with one vCPU driven by raw ioctls (so KVM_RUN's -errno and kvm_run stay visible), guest memory as an
/// anonymous host mapping bound as a plain memslot at GPA 0. Long mode: identity page tables for 0..6 MiB with
/// 2 MiB pages (PML4 0x1000, PDPT 0x2000, PD 0x3000), code at 0x200000, stack below 0x300000.
/// </summary>
internal sealed class RawGuest : IDisposable
{
    public const ulong MemorySize = 0x60_0000;
    public const ulong CodeGpa = 0x20_0000;
    public const ulong Pml4 = 0x1000, Pdpt = 0x2000, Pd = 0x3000;

    private readonly MappedRegion _run;

    // sevInit2: KVM_SEV_INIT2 before the vCPU exists — an SEV VM's vCPU does not run without it (svm_vcpu_pre_run), and
    // an SNP VM's private accesses then go through the RMP.
    public RawGuest(IKernel kernel, ulong vmType = 0, bool slot = true, bool sevInit2 = false)
    {
        Kernel = kernel;
        Sys = Raw.OpenKvm(kernel);
        Vm = Raw.CreateVm(kernel, Sys, vmType);
        if (sevInit2) Assert.Equal(0, Raw.SevInit2(kernel, Vm));
        Assert.Equal(0, MappedRegion.Map(kernel, null, MemorySize, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, 0, out var mem));
        Memory = mem!;
        if (slot) Assert.Equal(0, Raw.Region1(kernel, Vm, 0, 0, 0, MemorySize, (ulong)Memory.Address));
        long fd = kernel.Ioctl(Vm, KvmIoctls.KVM_CREATE_VCPU, 0UL);
        Assert.True(fd >= 0, $"KVM_CREATE_VCPU: {fd}");
        Vcpu = kernel.Adopt((int)fd);
        long size = kernel.Ioctl(Sys, KvmIoctls.KVM_GET_VCPU_MMAP_SIZE, 0UL);
        Assert.Equal(0, MappedRegion.Map(kernel, Vcpu, (ulong)size, PROT_READ | PROT_WRITE, MAP_SHARED, 0, out var run));
        _run = run!;
    }

    public IKernel Kernel { get; }

    public KernelFd Sys { get; }

    public KernelFd Vm { get; }

    public KernelFd Vcpu { get; }

    public MappedRegion Memory { get; }

    public Span<byte> Run => _run.GetSpan(0, (int)_run.Length);

    public KvmExitReason ExitReason => (KvmExitReason)BinaryPrimitives.ReadUInt32LittleEndian(Run[KvmRunLayout.exit_reason..]);

    public ulong U64(int offset) => BinaryPrimitives.ReadUInt64LittleEndian(Run[offset..]);

    public uint U32(int offset) => BinaryPrimitives.ReadUInt32LittleEndian(Run[offset..]);

    public bool ImmediateExit
    {
        set => Run[KvmRunLayout.immediate_exit] = value ? (byte)1 : (byte)0;
    }

    /// <summary>KVM_RUN: 0 or -errno.</summary>
    public long RunOnce() => Kernel.Ioctl(Vcpu, KvmIoctls.KVM_RUN, 0UL);

    /// <summary>KVM_RUN that must exit with <paramref name="expected"/>.</summary>
    public void RunExpect(KvmExitReason expected)
    {
        long rc = RunOnce();
        Assert.True(rc == 0, $"KVM_RUN returned {rc}");
        Assert.Equal(expected, ExitReason);
    }

    public Span<byte> IoData => Run.Slice((int)U64(KvmRunLayout.io_data_offset), Run[KvmRunLayout.io_size]);

    public kvm_regs Regs
    {
        get
        {
            var r = default(kvm_regs);
            Assert.Equal(0, Kernel.Ioctl(Vcpu, KvmIoctls.KVM_GET_REGS, Raw.Bytes(ref r)));
            return r;
        }
        set => Assert.Equal(0, Kernel.Ioctl(Vcpu, KvmIoctls.KVM_SET_REGS, Raw.Bytes(ref value)));
    }

    public kvm_sregs Sregs
    {
        get
        {
            var s = default(kvm_sregs);
            Assert.Equal(0, Kernel.Ioctl(Vcpu, KvmIoctls.KVM_GET_SREGS, Raw.Bytes(ref s)));
            return s;
        }
        set => Assert.Equal(0, Kernel.Ioctl(Vcpu, KvmIoctls.KVM_SET_SREGS, Raw.Bytes(ref value)));
    }

    public void Write(ulong gpa, ReadOnlySpan<byte> bytes) => bytes.CopyTo(Memory.GetSpan(gpa, bytes.Length));

    public void Write64(ulong gpa, ulong value) => BinaryPrimitives.WriteUInt64LittleEndian(Memory.GetSpan(gpa, 8), value);

    public ulong Read64(ulong gpa) => BinaryPrimitives.ReadUInt64LittleEndian(Memory.GetSpan(gpa, 8));

    /// <summary>Long mode with identity 2 MiB pages over guest memory; <paramref name="program"/> at <see cref="CodeGpa"/>.</summary>
    public void LongMode(Action<Assembler> program, ulong rsp = 0x30_0000, ulong rflags = 2)
    {
        Write64(Pml4, Pdpt | 3);
        Write64(Pdpt, Pd | 3);
        for (ulong i = 0; i < MemorySize / 0x20_0000; i++) Write64(Pd + i * 8, (i * 0x20_0000) | 0x83);
        Write(CodeGpa, Assemble(64, CodeGpa, program));
        var s = Sregs;
        s.cr0 = 0x8005_0033; // PE MP ET NE WP AM PG
        s.cr3 = Pml4;
        s.cr4 = 0x20; // PAE
        s.efer = 0x500; // LME | LMA
        s.cs = new kvm_segment { limit = 0xffff_ffff, selector = 8, type = 11, present = 1, s = 1, l = 1, g = 1 };
        var data = new kvm_segment { limit = 0xffff_ffff, selector = 16, type = 3, present = 1, s = 1, db = 1, g = 1 };
        s.ds = s.es = s.fs = s.gs = s.ss = data;
        s.idt = default;
        s.gdt = default;
        Sregs = s;
        Regs = new kvm_regs { rip = CodeGpa, rsp = rsp, rflags = rflags };
    }

    /// <summary>Real mode with every segment at <paramref name="baseGpa"/> and the code at its offset 0.</summary>
    public void RealMode(Action<Assembler> program, ulong baseGpa = 0x1_0000)
    {
        Write(baseGpa, Assemble(16, 0, program));
        var s = Sregs;
        s.cs.@base = s.ds.@base = s.es.@base = s.ss.@base = baseGpa;
        s.cs.selector = s.ds.selector = s.es.selector = s.ss.selector = (ushort)(baseGpa >> 4);
        Sregs = s;
        Regs = new kvm_regs { rip = 0, rflags = 2, rsp = 0xfff0 };
    }

    public static byte[] Assemble(int bitness, ulong ip, Action<Assembler> program)
    {
        var a = new Assembler(bitness);
        program(a);
        using var stream = new MemoryStream();
        a.Assemble(new StreamCodeWriter(stream), ip);
        return stream.ToArray();
    }

    public void Dispose()
    {
        _run.Dispose();
        Vcpu.Dispose();
        Memory.Dispose();
        Vm.Dispose();
        Sys.Dispose();
    }
}
