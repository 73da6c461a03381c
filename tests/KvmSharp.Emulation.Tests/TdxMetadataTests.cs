// SPDX-License-Identifier: MIT
using Iced.Intel;
using KvmSharp.Conformance.Guests;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// TDG.VM.RD (leaf 7) and TDG.VM.WR (leaf 8) on the emulated TDX module (X86/Emulate/X86Emulator.TdxVmRdWr.cs,
/// Arch/X86/TdxMetadata.cs): the TDCS fields Linux's tdx_setup reads and writes (arch/x86/coco/tdx/tdx.c,
/// arch/x86/include/asm/shared/tdx.h TDCS_*), the module's errors (intel/tdx-module tdg_vm_rd_wr.c,
/// metadata_generic.c, metadata_td.c), and TD_CTLS.REDUCE_VE / ENUM_TOPOLOGY / VIRT_CPUID2 taking effect on CPUID
/// (td_cpuid.c).
/// </summary>
public sealed class TdxMetadataTests
{
    private const int TdgVmRd = 7, TdgVmWr = 8;

    // Linux's IDs (asm/shared/tdx.h) and the module table's (auto_gen_2_0/tdr_tdcs_fields_lookup.c).
    private const ulong ConfigFlags = 0x1110_0003_0000_0016, TdCtls = 0x1110_0003_0000_0017;
    private const ulong NotifyEnables = 0x9100_0000_0000_0010, TopologyEnumConfigured = 0x9100_0000_0000_0019;
    private const ulong Attributes = 0x1110_0003_0000_0000, Xfam = 0x1110_0003_0000_0001, MaxVcpus = 0x1110_0002_0000_0002;
    private const ulong Gpaw = 0x1110_0000_0000_0003, Eptp = 0x1110_0003_0000_0004, NumVcpus = 0x9010_0002_0000_0001;
    private const ulong Mrtd = 0x1310_0003_0000_0000, Rtmr = 0x1310_0003_0000_0040;

    private const ulong PendingVeDisable = 1, EnumTopology = 2, VirtCpuid2 = 4, ReduceVe = 8, Lock = 1UL << 63;

    private const ulong Success = 0, OperandInvalid = 0xC000_0100_0000_0000;
    private const ulong FieldIdIncorrect = 0xC000_0C00_0000_0000, NotWritable = 0xC000_0C01_0000_0000;
    private const ulong NotReadable = 0xC000_0C02_0000_0000, ValueNotValid = 0xC000_0C03_0000_0000;
    private const ulong FirstFieldIdInContext = 0x0000_0C0B_0000_0000;

    private static EmulatedKernel NewKernel() => new(EmulatorConfig.X86_64());

    /// <summary>TDCALL leaf|version&lt;&lt;16 with RCX, RDX, R8, R9; reports RAX, then R8.</summary>
    private static void Call(Assembler a, int leaf, ulong field, ulong r8Value = 0, ulong r9Value = 0, int version = 0, ulong rcxValue = 0)
    {
        a.mov(rcx, rcxValue);
        a.mov(rdx, field);
        a.mov(r8, r8Value);
        a.mov(r9, r9Value);
        a.mov(eax, leaf | (version << 16));
        a.tdcall();
        a.mov(rsi, rdx); // TDG.VM.RD version 1: the next field ID
        TdGuest.Report(a, rax);
        TdGuest.Report(a, r8);
    }

    private static (ulong Rax, ulong R8) Result(TdGuest td) => (td.RunToReport(), td.RunToReport());

    [Fact]
    public void Linux_tdx_setup_reads_config_and_controls_and_enables_reduce_ve()
    {
        using var k = NewKernel();
        using var kvm = Kvm.Open(k, proposals: k.Config.Proposals);
        using var td = TdGuest.Create(kvm, a =>
        {
            // tdx_setup: "tdg_vm_wr(TDCS_NOTIFY_ENABLES, 0, -1ULL)", then disable_sept_ve and reduce_unnecessary_ve.
            Call(a, TdgVmWr, NotifyEnables, 0, ulong.MaxValue);
            Call(a, TdgVmRd, ConfigFlags);
            Call(a, TdgVmRd, TdCtls);
            Call(a, TdgVmRd, TopologyEnumConfigured);
            Call(a, TdgVmWr, TdCtls, ReduceVe, ReduceVe);
            Call(a, TdgVmRd, TdCtls);
            // The other small read-only fields.
            Call(a, TdgVmRd, Attributes);
            Call(a, TdgVmRd, Xfam);
            Call(a, TdgVmRd, NumVcpus);
            Call(a, TdgVmRd, MaxVcpus);
            Call(a, TdgVmRd, Gpaw);
            Call(a, TdgVmRd, Mrtd + 5);
            Call(a, TdgVmRd, Rtmr + 6 * 3 + 1);
            Call(a, TdgVmWr, NotifyEnables, 1, 1);
            Call(a, TdgVmRd, NotifyEnables);
            TdTestCode.SpinForever(a);
        });

        Assert.Equal((Success, 0UL), Result(td));               // NOTIFY_ENABLES ← 0: the old value
        Assert.Equal((Success, 4UL), Result(td));               // CONFIG_FLAGS: NO_RBP_MOD, GPAW 48, no FLEXIBLE_PENDING_VE
        Assert.Equal((Success, 0UL), Result(td));               // TD_CTLS: SEPT_VE_DISABLE not in ATTRIBUTES
        Assert.Equal((Success, 1UL), Result(td));               // TOPOLOGY_ENUM_CONFIGURED (TDH.VP.INIT version 1)
        Assert.Equal((Success, 0UL), Result(td));               // TD_CTLS ← REDUCE_VE: old value 0
        Assert.Equal((Success, ReduceVe | EnumTopology | VirtCpuid2), Result(td)); // REDUCE_VE implies the other two
        Assert.Equal((Success, 0UL), Result(td));               // ATTRIBUTES
        var (xfamStatus, xfam) = Result(td);
        Assert.Equal((Success, 3UL), (xfamStatus, xfam & 3));   // XFAM: x87 and SSE at least
        Assert.Equal((Success, 1UL), Result(td));               // NUM_VCPUS
        var (maxStatus, max) = Result(td);
        Assert.Equal(Success, maxStatus);
        Assert.Equal((ulong)Math.Min(k.Config.MaxVcpus, k.Config.OnlineCpus), max);
        Assert.Equal((Success, 0UL), Result(td));               // GPAW: 0 = 48 bits
        Assert.Equal(0, TdxAttestationInspection.Measurements(k, td.Vm.Handle, out var m));
        Assert.Equal((Success, BitConverter.ToUInt64(m!.Mrtd, 40)), Result(td)); // MRTD element 5
        Assert.Equal((Success, 0UL), Result(td));               // RTMR3 element 1
        Assert.Equal((Success, 0UL), Result(td));               // NOTIFY_ENABLES ← 1
        Assert.Equal((Success, 1UL), Result(td));
    }

    [Fact]
    public void Bad_ids_masks_values_and_operands_get_the_modules_errors()
    {
        using var k = NewKernel();
        using var kvm = Kvm.Open(k, proposals: k.Config.Proposals);
        using var td = TdGuest.Create(kvm, a =>
        {
            Call(a, TdgVmRd, 0x9110_0003_0000_007F);                // no such field
            Call(a, TdgVmRd, TdCtls | (1UL << 34));                 // LAST_ELEMENT_IN_FIELD ≠ 0
            Call(a, TdgVmRd, TdCtls | (1UL << 24));                 // reserved bits 31:24
            Call(a, TdgVmRd, Eptp);                                 // guest read mask 0
            Call(a, TdgVmWr, Attributes, 1, ulong.MaxValue);        // guest write mask 0
            Call(a, TdgVmWr, TdCtls, PendingVeDisable, PendingVeDisable); // no CONFIG_FLAGS.FLEXIBLE_PENDING_VE
            Call(a, TdgVmWr, TdCtls, 0x10, 0x10);                   // only a reserved bit: nothing writable
            Call(a, TdgVmWr, TdCtls, 0x10, 0x11);                   // a non-writable bit changed
            Call(a, TdgVmRd, TdCtls, rcxValue: 1);                  // VM ID ≠ 0
            Call(a, TdgVmWr, NotifyEnables, 1, 1, version: 1);      // TDG.VM.WR has no version 1
            Call(a, TdgVmRd, TdCtls, version: 2);
            Call(a, TdgVmRd, TdCtls, 0x1234, rcxValue: 0);          // R8 is cleared on success too
            Call(a, TdgVmWr, TdCtls, Lock, Lock);                   // LOCK
            Call(a, TdgVmWr, TdCtls, EnumTopology, EnumTopology);   // locked: no change
            Call(a, TdgVmWr, TdCtls, Lock, Lock);                   // locked, same value: fine
            Call(a, TdgVmRd, TdCtls);
            TdTestCode.SpinForever(a);
        });

        Assert.Equal((FieldIdIncorrect, 0UL), Result(td));
        Assert.Equal((FieldIdIncorrect, 0UL), Result(td));
        Assert.Equal((FieldIdIncorrect, 0UL), Result(td));
        Assert.Equal((NotReadable, 0UL), Result(td));
        Assert.Equal((NotWritable, 0UL), Result(td));
        Assert.Equal((ValueNotValid, 0UL), Result(td));
        Assert.Equal((NotWritable, 0UL), Result(td));
        Assert.Equal((ValueNotValid, 0UL), Result(td));
        Assert.Equal((OperandInvalid | 1, 0UL), Result(td));   // operand RCX
        Assert.Equal((OperandInvalid, 1UL), Result(td));       // operand RAX: td_call refuses before tdg_vm_wr clears R8
        Assert.Equal((OperandInvalid, 0UL), Result(td));       // operand RAX (tdg_vm_rd)
        Assert.Equal((Success, 0UL), Result(td));
        Assert.Equal((Success, 0UL), Result(td));
        Assert.Equal((ValueNotValid, 0UL), Result(td));
        Assert.Equal((Success, Lock), Result(td));
        Assert.Equal((Success, Lock), Result(td));
    }

    [Fact]
    public void Version_1_reads_return_the_next_readable_field_id_in_rdx()
    {
        using var k = NewKernel();
        using var kvm = Kvm.Open(k, proposals: k.Config.Proposals);
        using var td = TdGuest.Create(kvm, a =>
        {
            foreach (ulong id in new[] { ulong.MaxValue, Attributes, TdCtls, Mrtd, Mrtd + 5, Gpaw, Eptp, Rtmr + 23 })
            {
                Call(a, TdgVmRd, id, version: 1);
                TdGuest.Report(a, rsi);
            }
            TdTestCode.SpinForever(a);
        });
        (ulong, ulong, ulong) Next() => (td.RunToReport(), td.RunToReport(), td.RunToReport());

        // The null ID: TDX_METADATA_FIRST_FIELD_ID_IN_CONTEXT, RDX = the first guest-readable field (NUM_VCPUS).
        Assert.Equal((FirstFieldIdInContext, 0UL, NumVcpus), Next());
        Assert.Equal((Success, 0UL, Xfam), Next());
        // The input's context code is ignored (set to TD, 1); the next row's ID is the table's.
        Assert.Equal(Success, td.RunToReport());
        td.RunToReport();
        Assert.Equal(0x9110_0000_0000_0019UL, td.RunToReport()); // TOPOLOGY_ENUM_CONFIGURED
        var (mrtdStatus, _, mrtdNext) = Next();
        Assert.Equal((Success, Mrtd + 1), (mrtdStatus, mrtdNext)); // the next element of the same field
        var (lastStatus, _, lastNext) = Next();
        Assert.Equal((Success, 0x1310_0003_0000_0010UL), (lastStatus, lastNext)); // MRCONFIGID
        Assert.Equal((Success, 0UL, 0x9110_0003_0000_0010UL), Next()); // GPAW → NOTIFY_ENABLES (EPTP is not readable)
        Assert.Equal((NotReadable, 0UL, ulong.MaxValue), Next());
        Assert.Equal((Success, 0UL, ulong.MaxValue), Next()); // the last RTMR element: no next field
    }

    [Fact]
    public void Reduce_ve_turns_cpuid_6_and_topology_leaves_from_ve_into_values()
    {
        using var k = NewKernel();
        using var kvm = Kvm.Open(k, proposals: k.Config.Proposals);
        using var td = TdGuest.Create(kvm, a =>
        {
            var ve = a.CreateLabel();
            TdGuest.InstallHandler(a, 20, ve);
            void Cpuid(uint leaf, uint subleaf)
            {
                a.mov(eax, leaf);
                a.mov(ecx, subleaf);
                a.cpuid();
                TdGuest.Report(a, rdx);
                TdGuest.Report(a, rcx);
            }
            Cpuid(0x6, 0);
            Cpuid(0xb, 1);
            Call(a, TdgVmWr, TdCtls, ReduceVe, ReduceVe);
            Cpuid(0x6, 0);
            Cpuid(0xb, 1);
            TdTestCode.SpinForever(a);

            // #VE: report the exit reason, set RCX/RDX to a marker, skip the instruction.
            a.Label(ref ve);
            a.push(r8);
            a.push(r9);
            a.push(r10);
            TdTestCode.ReportVeInfo(a, rcx);
            a.mov(eax, r10d);
            a.add(__qword_ptr[rsp + 24], rax);
            a.mov(ecx, 0x7e7e);
            a.mov(edx, 0x7e7e);
            a.pop(r10);
            a.pop(r9);
            a.pop(r8);
            a.iretq();
        });

        // Without REDUCE_VE / ENUM_TOPOLOGY: both are a #VE with exit reason 10 (CPUID).
        Assert.Equal([10UL, 0x7e7eUL, 0x7e7eUL], Enumerable.Range(0, 3).Select(_ => td.RunToReport()));
        Assert.Equal([10UL, 0x7e7eUL, 0x7e7eUL], Enumerable.Range(0, 3).Select(_ => td.RunToReport()));
        Assert.Equal((Success, 0UL), Result(td));
        // With it: CPUID(6) is the configured value (no #VE); CPUID(0xB, 1) reports the x2APIC ID (vCPU 0) in EDX and
        // the subleaf in ECX[7:0] (from the configured leaf, or all-0 but ECX/EDX when it is outside the table).
        var edx6 = td.RunToReport();
        var ecx6 = td.RunToReport();
        Assert.NotEqual((0x7e7eUL, 0x7e7eUL), (edx6, ecx6));
        Assert.Equal(0UL, td.RunToReport());           // EDX = x2APIC ID 0
        Assert.Equal(1UL, td.RunToReport() & 0xff);    // ECX[7:0] = the level number
    }
}
