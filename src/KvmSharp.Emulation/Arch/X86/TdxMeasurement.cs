// SPDX-License-Identifier: MIT
using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using KvmSharp.Abi;
using KvmSharp.Emulation.KvmMain;
using KvmSharp.Emulation.Mmu;
using KvmSharp.Memory;

namespace KvmSharp.Emulation.Arch;

/// <summary>
/// The TD's measurement registers as the emulated TDX module keeps them in its TDCS (intel/tdx-module
/// tdcs measurement_fields): MRTD's running SHA-384 (td_sha_ctx) and, after TDH.MR.FINALIZE, its value; MRCONFIGID,
/// MROWNER and MROWNERCONFIG from TD_PARAMS (TDH.MNG.INIT, which KVM_TDX_INIT_VM's struct kvm_tdx_init_vm fills:
/// arch/x86/kvm/vmx/tdx.c setup_tdparams copies mrconfigid / mrowner / mrownerconfig); RTMR0–3 (zero at
/// TDH.MNG.INIT, extended by TDG.MR.RTMR.EXTEND).
/// </summary>
internal sealed class TdMeasurementState
{
    /// <summary>SHA-384 digest size: SIZE_OF_SHA384_HASH_IN_BYTES.</summary>
    public const int DigestSize = 48;

    /// <summary>NUM_RTMRS (intel/tdx-module include/tdx_api_defs.h NUM_OF_RTMRS).</summary>
    public const int RtmrCount = 4;

    /// <summary>td_sha_ctx: the MRTD SHA-384 before TDH.MR.FINALIZE; null once finalized.</summary>
    public IncrementalHash? MrtdContext;

    /// <summary>TDCS.MRTD: zero until TDH.MR.FINALIZE.</summary>
    public byte[] Mrtd = new byte[DigestSize];

    public byte[] MrConfigId = new byte[DigestSize];
    public byte[] MrOwner = new byte[DigestSize];
    public byte[] MrOwnerConfig = new byte[DigestSize];

    /// <summary>TDCS.RTMR[0..3].</summary>
    public readonly byte[][] Rtmr = [new byte[DigestSize], new byte[DigestSize], new byte[DigestSize], new byte[DigestSize]];
}

/// <summary>
/// MRTD and the other TDCS measurements (see <see cref="TdMeasurementState"/>), fed by KVM's SEAMCALLs:
/// TDH.MNG.INIT (KVM_TDX_INIT_VM), TDH.MEM.PAGE.ADD and TDH.MR.EXTEND (KVM_TDX_INIT_MEM_REGION: vmx/tdx.c
/// tdx_gmem_post_populate adds the page, then "if (arg->flags &amp; KVM_TDX_MEASURE_MEMORY_REGION) for (i = 0; i &lt;
/// PAGE_SIZE; i += TDX_EXTENDMR_CHUNKSIZE) tdh_mr_extend(&amp;kvm_tdx->td, gpa + i, …)", TDX_EXTENDMR_CHUNKSIZE = 256),
/// and TDH.MR.FINALIZE (KVM_TDX_FINALIZE_VM). The blocks hashed are the module's: intel/tdx-module
/// src/vmm_dispatcher/api_calls/tdh_mem_page_add.c and tdh_mr_extend.c fill a 128-byte sha384_128B_block_t with the
/// ASCII name ("MEM.PAGE.ADD" / "MR.EXTEND") at byte 0 and the GPA (little endian) at byte 16, the rest zero, and
/// TDH.MR.EXTEND then hashes the 256 bytes of the chunk (two more 128-byte blocks); tdh_mr_finalize.c finalizes the
/// SHA-384 into MRTD. The state hangs off the VM's <see cref="TdxInfo"/> (a weak table, as CocoState keeps it).
/// </summary>
internal static class TdxMeasurement
{
    /// <summary>TDX_EXTENDMR_CHUNKSIZE (arch/x86/include/asm/tdx.h) = the 256-byte granule TDH.MR.EXTEND measures.</summary>
    public const int ExtendChunk = 256;

    private static readonly ConditionalWeakTable<TdxInfo, TdMeasurementState> s_state = [];

    /// <summary>The TD's measurement state (all zero before KVM_TDX_INIT_VM).</summary>
    public static TdMeasurementState Of(TdxInfo td) => s_state.GetValue(td, _ => new TdMeasurementState());

    /// <summary>
    /// TDH.MNG.INIT: MRTD's SHA-384 starts (tdh_mng_init.c: sha384_init of td_sha_ctx), the three software-defined
    /// IDs are copied from TD_PARAMS, the RTMRs are zero.
    /// </summary>
    public static void InitVm(TdxInfo td, in kvm_tdx_init_vm init)
    {
        var m = Of(td);
        m.MrtdContext?.Dispose();
        m.MrtdContext = IncrementalHash.CreateHash(HashAlgorithmName.SHA384);
        Array.Clear(m.Mrtd);
        Copy(init.mrconfigid, m.MrConfigId);
        Copy(init.mrowner, m.MrOwner);
        Copy(init.mrownerconfig, m.MrOwnerConfig);
        foreach (var r in m.Rtmr) Array.Clear(r);
    }

    /// <summary>
    /// TDH.MEM.PAGE.ADD of the 4 KiB page at <paramref name="gpa"/> and, when <paramref name="measure"/>
    /// (KVM_TDX_MEASURE_MEMORY_REGION), TDH.MR.EXTEND of each of its 256-byte chunks, with the contents as added (read
    /// back from the guest_memfd page that KVM_TDX_INIT_MEM_REGION just filled). Caller holds the kernel lock.
    /// </summary>
    public static void PageAdded(Kvm kvm, TdxInfo td, ulong gpa, bool measure)
    {
        if (Of(td).MrtdContext is not { } sha) return;
        sha.AppendData(Block("MEM.PAGE.ADD", gpa));
        if (!measure) return;
        var page = new byte[EmulatorConfig.PageSize];
        ReadGmemPage(kvm, gpa >> EmulatorConfig.PageShift, page);
        for (int i = 0; i < page.Length; i += ExtendChunk)
        {
            sha.AppendData(Block("MR.EXTEND", gpa + (ulong)i));
            sha.AppendData(page.AsSpan(i, ExtendChunk));
        }
    }

    /// <summary>TDH.MR.FINALIZE: MRTD = the SHA-384 of everything added and extended (tdh_mr_finalize.c sha384_finalize).</summary>
    public static void Finalize(TdxInfo td)
    {
        var m = Of(td);
        if (m.MrtdContext is not { } sha) return;
        m.Mrtd = sha.GetHashAndReset();
        sha.Dispose();
        m.MrtdContext = null;
    }

    /// <summary>
    /// TDG.MR.RTMR.EXTEND's update (intel/tdx-module tdg_mr_rtmr_extend.c): RTMR[index] = SHA-384(RTMR[index] ||
    /// the 48-byte extension).
    /// </summary>
    public static void ExtendRtmr(TdxInfo td, int index, ReadOnlySpan<byte> extension)
    {
        var m = Of(td);
        Span<byte> cat = stackalloc byte[2 * TdMeasurementState.DigestSize];
        extension[..TdMeasurementState.DigestSize].CopyTo(cat[TdMeasurementState.DigestSize..]);
        // acquire_sharex_lock_hp_ex(&tdcs_p->measurement_fields.rtmr_lock): one extension at a time.
        lock (m)
        {
            m.Rtmr[index].CopyTo(cat);
            SHA384.HashData(cat, m.Rtmr[index]);
        }
    }

    /// <summary>The 128-byte block the module hashes for a SEAMCALL: ASCII name at 0, GPA at 16, zeros elsewhere.</summary>
    public static byte[] Block(string name, ulong gpa)
    {
        var block = new byte[128];
        for (int i = 0; i < name.Length; i++) block[i] = (byte)name[i];
        BitConverter.TryWriteBytes(block.AsSpan(16), gpa);
        return block;
    }

    /// <summary>
    /// The current contents of the guest_memfd page that backs private GFN <paramref name="gfn"/> (what the TD sees
    /// there; the module's private key is not modelled). False when no guest_memfd slot covers it. Caller holds the
    /// kernel lock.
    /// </summary>
    public static bool ReadGmemPage(Kvm kvm, ulong gfn, Span<byte> page)
    {
        page.Clear();
        var slot = GuestMemoryPath.GfnToMemslot(kvm, 0, gfn);
        if (slot is null || !slot.HasGmem || slot.GmemFile is not { } file || file.Released) return false;
        ulong index = gfn - slot.BaseGfn + slot.GmemPgoff;
        long rc = HostMemory.Pread(file.GmemInode.MemfdFd, page, (long)(index << EmulatorConfig.PageShift));
        return rc == page.Length;
    }

    private static void Copy(ReadOnlySpan<ulong> source, byte[] destination) =>
        System.Runtime.InteropServices.MemoryMarshal.AsBytes(source).CopyTo(destination);
}
