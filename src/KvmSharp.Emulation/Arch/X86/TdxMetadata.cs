// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using KvmSharp.Emulation.KvmMain;

namespace KvmSharp.Emulation.Arch;

/// <summary>
/// The TDCS fields a TD guest's TDG.VM.WR changes (intel/tdx-module src/common/metadata_handlers/metadata_td.c
/// md_td_write_element): TD_CTLS, NOTIFY_ENABLES and FEATURE_PARAVIRT_CTLS (0: TDH.MNG.INIT leaves it clear). TD_CTLS starts with PENDING_VE_DISABLE =
/// ATTRIBUTES.SEPT_VE_DISABLE (TDH.MNG.INIT) and the other controls clear.
/// </summary>
internal sealed class TdcsControls
{
    /// <summary>TDCS.TD_CTLS.</summary>
    public ulong TdCtls;

    /// <summary>TDCS.NOTIFY_ENABLES (bit 0: notify on a zero-step attack).</summary>
    public ulong NotifyEnables;

    /// <summary>TDCS.FEATURE_PARAVIRT_CTLS (<see cref="TdxCpuidFlags"/>: which features stay visible under REDUCE_VE).</summary>
    public ulong FeatureParavirtCtls;
}

/// <summary>One row of the module's TDR/TDCS lookup table (md_lookup_t): the base field ID, the counts and the guest's masks.</summary>
internal readonly record struct TdMdField(string Name, ulong Id, int Fields, int Elements, ulong GuestRead, ulong GuestWrite);

/// <summary>
/// The TD-scope metadata (TDR and TDCS fields) as TDG.VM.RD / TDG.VM.WR see them: the field IDs, element sizes and
/// guest read/write masks of intel/tdx-module include/auto_gen_2_0/tdr_tdcs_fields_lookup.c (tdr_tdcs_lookup), for
/// the rows a Linux guest uses (arch/x86/coco/tdx/tdx.c tdx_setup, disable_sept_ve, reduce_unnecessary_ve; field IDs
/// in arch/x86/include/asm/shared/tdx.h TDCS_*) and the small read-only ones (ATTRIBUTES, XFAM, vCPU counts, GPAW,
/// CONFIG_FLAGS, the measurements, FEATURE_PARAVIRT_CTLS — which Linux does not use, but which decides the CPUID bits
/// REDUCE_VE clears: <see cref="TdxCpuidFlags"/>), plus HKID and EPTP as examples of fields the guest may not read. Not
/// modelled (FIELD_ID_INCORRECT here, readable on a real module): TD_UUID, TSC_FREQUENCY, CPUID_FIXED0_BITMAP (guest
/// read mask 0 anyway) and the migration / service-TD / x2APIC-ID classes — so TDG.VM.RD version 1's "next field" walks only these rows.
/// Field ID layout (tdx_api_defs.h md_field_id_t): FIELD_CODE 23:0, reserved 31:24, ELEMENT_SIZE_CODE 33:32,
/// LAST_ELEMENT_IN_FIELD 37:34, LAST_FIELD_IN_SEQUENCE 46:38, reserved 49:47, INC_SIZE 50, WRITE_MASK_VALID 51,
/// CONTEXT_CODE 54:52, reserved 55, CLASS_CODE 61:56, reserved 62, NON_ARCH 63.
/// </summary>
internal static class TdxMetadata
{
    /// <summary>tdx_error_codes_defs.h.</summary>
    public const ulong FieldIdIncorrect = 0xC000_0C00_0000_0000, FieldNotWritable = 0xC000_0C01_0000_0000,
        FieldNotReadable = 0xC000_0C02_0000_0000, FieldValueNotValid = 0xC000_0C03_0000_0000,
        FirstFieldIdInContext = 0x0000_0C0B_0000_0000;

    /// <summary>MD_FIELD_ID_NA: no (next) field.</summary>
    public const ulong FieldIdNa = ulong.MaxValue;

    /// <summary>CONTEXT_CODE_MASK (metadata_generic.h), MD_CTX_TD = 1.</summary>
    private const ulong ContextMask = 0x0070_0000_0000_0000, ContextTd = 0x0010_0000_0000_0000;

    /// <summary>asm/shared/tdx.h TD_CTLS_* and TDCS_CONFIG_FLEXIBLE_PENDING_VE.</summary>
    public const ulong TdCtlsPendingVeDisable = 1UL << 0, TdCtlsEnumTopology = 1UL << 1, TdCtlsVirtCpuid2 = 1UL << 2,
        TdCtlsReduceVe = 1UL << 3, TdCtlsLock = 1UL << 63, ConfigFlexiblePendingVe = 1UL << 1;

    /// <summary>td_ctls_t's defined bits (PENDING_VE_DISABLE, ENUM_TOPOLOGY, VIRT_CPUID2, REDUCE_VE, LOCK); the rest is "reserved".</summary>
    private const ulong TdCtlsDefined = 0x8000_0000_0000_000F;

    /// <summary>vmx/tdx_arch.h TDX_CONFIG_FLAGS_MAX_GPAW (bit 0) and TDX_CONFIG_FLAGS_NO_RBP_MOD (bit 2).</summary>
    private const ulong ConfigMaxGpaw = 1UL << 0, ConfigNoRbpMod = 1UL << 2;

    private const ulong All = ulong.MaxValue;

    /// <summary>The modelled rows, in the table's order (context, class, field code).</summary>
    public static readonly TdMdField[] Fields =
    [
        new("HKID", 0x8110_0001_0000_0001, 1, 1, 0, 0),
        new("NUM_VCPUS", 0x9010_0002_0000_0001, 1, 1, 0xFFFF_FFFF, 0),
        new("NUM_L2_VMS", 0x9010_0001_0000_0005, 1, 1, 0xFFFF, 0),
        new("ATTRIBUTES", 0x1110_0003_0000_0000, 1, 1, All, 0),
        new("XFAM", 0x1110_0003_0000_0001, 1, 1, All, 0),
        new("MAX_VCPUS", 0x1110_0002_0000_0002, 1, 1, 0xFFFF_FFFF, 0),
        new("GPAW", 0x1110_0000_0000_0003, 1, 1, 0xFF, 0),
        new("EPTP", 0x1110_0003_0000_0004, 1, 1, 0, 0),
        new("NOTIFY_ENABLES", 0x9110_0003_0000_0010, 1, 1, 1, 1),
        new("CONFIG_FLAGS", 0x9110_0003_0000_0016, 1, 1, All, 0),
        new("TD_CTLS", 0x9110_0003_0000_0017, 1, 1, TdCtlsDefined, TdCtlsDefined),
        new("TOPOLOGY_ENUM_CONFIGURED", 0x9110_0000_0000_0019, 1, 1, 0xFF, 0),
        new("VE_REDUCTION_VALID", 0x9110_0000_0000_001A, 1, 1, 0xFF, 0),
        // Row 37 of the 2.x table (1666adc): guest read and write mask 4095, special write handling.
        new("FEATURE_PARAVIRT_CTLS", 0x9110_0003_0000_0022, 1, 1, TdxCpuidFlags.PvDefined, TdxCpuidFlags.PvDefined),
        new("MRTD", 0x1310_0003_0000_0000, 1, 6, All, 0),
        new("MRCONFIGID", 0x1310_0003_0000_0010, 1, 6, All, 0),
        new("MROWNER", 0x1310_0003_0000_0018, 1, 6, All, 0),
        new("MROWNERCONFIG", 0x1310_0003_0000_0020, 1, 6, All, 0),
        new("RTMR", 0x1310_0003_0000_0040, 4, 6, All, 0),
    ];

    private static readonly ConditionalWeakTable<TdxInfo, TdcsControls> s_controls = [];

    /// <summary>The TD's writable TDCS controls (created on first use, after KVM_TDX_INIT_VM set the attributes).</summary>
    public static TdcsControls Controls(TdxInfo td) => s_controls.GetValue(td, t => new TdcsControls
    {
        TdCtls = (t.Attributes & TdxModule.TdAttrSeptVeDisable) != 0 ? TdCtlsPendingVeDisable : 0,
    });

    public static int ClassCode(ulong id) => (int)((id >> 56) & 0x3F);

    public static uint FieldCode(ulong id) => (uint)(id & 0xFF_FFFF);

    private static int SizeCode(ulong id) => (int)((id >> 32) & 3);

    /// <summary>md_get_element_size_mask.</summary>
    private static ulong SizeMask(ulong id) => SizeCode(id) == 3 ? All : (1UL << (8 << SizeCode(id))) - 1;

    /// <summary>is_null_field_id: -1 whatever the context code.</summary>
    public static bool IsNull(ulong id) => (id | ContextMask) == FieldIdNa;

    /// <summary>The ID with CONTEXT_CODE = MD_CTX_TD ("CONTEXT_CODE is ignored on input", tdg_vm_rd_wr).</summary>
    public static ulong WithTdContext(ulong id) => (id & ~ContextMask) | ContextTd;

    /// <summary>
    /// md_check_as_single_element_id: reserved bits 31:24, 49:47, 55 and 62, LAST_ELEMENT_IN_FIELD and
    /// LAST_FIELD_IN_SEQUENCE must be 0 (WRITE_MASK_VALID, the size, INC_SIZE and the context are ignored).
    /// </summary>
    public static bool IsSingleElementId(ulong id) => (id & 0x4083_FFFC_FF00_0000) == 0;

    /// <summary>md_find_entry_idx: the row whose class matches and whose element range holds the field code; -1 for none.</summary>
    public static int Find(ulong id)
    {
        for (int i = 0; i < Fields.Length; i++)
        {
            var f = Fields[i];
            uint first = FieldCode(f.Id);
            if (ClassCode(id) == ClassCode(f.Id) && FieldCode(id) >= first && FieldCode(id) < first + (uint)(f.Fields * f.Elements))
                return i;
        }
        return -1;
    }

    /// <summary>
    /// md_td_get_element's value of element <paramref name="element"/> of row <paramref name="row"/>, masked to the
    /// row's element size. The sources: <see cref="TdxInfo"/> (ATTRIBUTES, XFAM, GPAW — TDCS keeps a flag, 1 for
    /// GPAW 52), the vCPU counts as TDG.VP.INFO reports them, CONFIG_FLAGS as KVM's setup_tdparams sets them
    /// (NO_RBP_MOD, MAX_GPAW for GPAW 52; never FLEXIBLE_PENDING_VE), TOPOLOGY_ENUM_CONFIGURED = 1 (TDH.MNG.INIT sets
    /// it; TDH.VP.INIT clears it only at version 0, and KVM's tdh_vp_init uses version 1 with the vCPU ID as x2APIC
    /// ID), VE_REDUCTION_VALID = 1 (only an import clears it), and the measurements as little-endian quadwords.
    /// </summary>
    public static ulong Value(Kvm kvm, TdxInfo td, int row, int element)
    {
        var m = TdxMeasurement.Of(td);
        ulong value = Fields[row].Name switch
        {
            "NUM_VCPUS" => (ulong)TdxVcpuIndex.NumVcpus(kvm),
            "ATTRIBUTES" => td.Attributes,
            "XFAM" => td.Xfam,
            "MAX_VCPUS" => (ulong)Math.Min(kvm.Kernel.Config.MaxVcpus, kvm.Kernel.Config.OnlineCpus),
            "GPAW" => td.SharedGpaBit == 1UL << 51 ? 1UL : 0,
            "NOTIFY_ENABLES" => Controls(td).NotifyEnables,
            "CONFIG_FLAGS" => ConfigNoRbpMod | (td.SharedGpaBit == 1UL << 51 ? ConfigMaxGpaw : 0),
            "TD_CTLS" => Controls(td).TdCtls,
            "FEATURE_PARAVIRT_CTLS" => Controls(td).FeatureParavirtCtls,
            "TOPOLOGY_ENUM_CONFIGURED" or "VE_REDUCTION_VALID" => 1,
            "MRTD" => Quad(m.Mrtd, element),
            "MRCONFIGID" => Quad(m.MrConfigId, element),
            "MROWNER" => Quad(m.MrOwner, element),
            "MROWNERCONFIG" => Quad(m.MrOwnerConfig, element),
            "RTMR" => RtmrQuad(m, element),
            _ => 0,
        };
        return value & SizeMask(Fields[row].Id);
    }

    private static ulong Quad(byte[] digest, int element) => BinaryPrimitives.ReadUInt64LittleEndian(digest.AsSpan(8 * element));

    private static ulong RtmrQuad(TdMeasurementState m, int element)
    {
        lock (m) return Quad(m.Rtmr[element / 6], element % 6);
    }

    /// <summary>
    /// md_get_next_element_in_context for a guest read: the ID of the element after <paramref name="id"/> (the same
    /// ID with the next field code while the row has elements left, else the next guest-readable row's base ID),
    /// the first guest-readable row's ID for a null ID, <see cref="FieldIdNa"/> past the last row.
    /// </summary>
    public static ulong NextReadable(ulong id)
    {
        int row;
        if (IsNull(id)) row = 0;
        else
        {
            row = Find(id);
            var f = Fields[row];
            if (FieldCode(id) - FieldCode(f.Id) < (uint)(f.Fields * f.Elements - 1))
                return (id & ~0xFF_FFFFUL) | (FieldCode(id) + 1);
            row++;
        }
        for (; row < Fields.Length; row++)
            if (Fields[row].GuestRead != 0) return Fields[row].Id;
        return FieldIdNa;
    }

    /// <summary>
    /// md_td_write_element's special handling of TD_CTLS (the value already merged with the write mask): with LOCK
    /// set nothing may change; without CONFIG_FLAGS.FLEXIBLE_PENDING_VE (never set by KVM) PENDING_VE_DISABLE may not
    /// change; REDUCE_VE turns on ENUM_TOPOLOGY and VIRT_CPUID2; ENUM_TOPOLOGY needs TOPOLOGY_ENUM_CONFIGURED (always
    /// 1 here); reserved bits set → invalid. Returns false for TDX_METADATA_FIELD_VALUE_NOT_VALID.
    /// </summary>
    public static bool TryWriteTdCtls(TdxInfo td, ulong value)
    {
        var c = Controls(td);
        lock (c) return WriteTdCtlsLocked(c, value);
    }

    /// <summary>
    /// md_td_write_element's FEATURE_PARAVIRT_CTLS case (the value already merged with the write mask, so its reserved
    /// bits 63:12 are 0): with TD_CTLS.LOCK set only the current value may be written (else
    /// TDX_METADATA_FIELD_VALUE_NOT_VALID, returned as false); otherwise the field changes and update_mutable_cpuid_flags
    /// recomputes CPUID_FLAGS (<see cref="TdxCpuidFlags.Of"/> derives them on demand). It is writable whether or not
    /// REDUCE_VE is on; without REDUCE_VE it has no visible effect.
    /// </summary>
    public static bool TryWriteFeatureParavirtCtls(TdxInfo td, ulong value)
    {
        var c = Controls(td);
        lock (c)
        {
            if ((c.TdCtls & TdCtlsLock) != 0) return value == c.FeatureParavirtCtls;
            c.FeatureParavirtCtls = value;
            return true;
        }
    }

    private static bool WriteTdCtlsLocked(TdcsControls c, ulong value)
    {
        ulong old = c.TdCtls;
        ulong modified = value ^ old;
        if ((old & TdCtlsLock) != 0) return modified == 0;
        if ((modified & TdCtlsPendingVeDisable) != 0) return false; // CONFIG_FLAGS.FLEXIBLE_PENDING_VE is 0
        if ((value & TdCtlsReduceVe) != 0) value |= TdCtlsEnumTopology | TdCtlsVirtCpuid2;
        if ((value & ~TdCtlsDefined) != 0) return false;
        c.TdCtls = value;
        return true;
    }
}
