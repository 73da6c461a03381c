// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using System.Text;

namespace KvmSharp.Emulation.Arch;

/// <summary>
/// MSG_KEY_REQ → MSG_KEY_RSP of the emulated PSP (<see cref="SnpPsp"/>): SEV-SNP Firmware ABI "MSG_KEY_REQ" /
/// "MSG_KEY_RSP"; the guest side is include/uapi/linux/sev-guest.h <c>struct snp_derived_key_req</c> /
/// <c>struct snp_derived_key_resp</c> (data[64]) and drivers/virt/coco/sev-guest/sev-guest.c get_derived_key.
/// Request (message version 1, 32 bytes): root_key_select (u32, bit 0: 0 VCEK, 1 VMRK; bits 31:1 reserved),
/// reserved (u32), guest_field_select (u64, bits 0..5: guest policy, image ID, family ID, measurement, guest SVN,
/// TCB version; the rest reserved — bit 6, the launch mitigation vector, is message version 2, not modelled), vmpl
/// (u32), guest_svn (u32), tcb_version (u64). Response (64 bytes): status (u32: 0 or INVALID_PARAM 0x16), 28
/// reserved bytes, the 32-byte derived key (zero when status is not 0).
/// <para>
/// <b>The key derivation is the emulator's stand-in</b>, not AMD's (the PSP's KDF is not public in full): the key is
/// HMAC-SHA-256 keyed with the root key — a random 32-byte secret per emulated chip for the VCEK, a random 32-byte
/// secret per guest context for the VMRK (the model gives every guest its own VMRK, as if launched without a migration
/// agent) — over a label, the root key select, the VMPL, guest_field_select, and then, in bit order, each selected
/// field: the guest policy (u64), image ID (16), family ID (16) — both from the ID block, zero without one —, the
/// launch measurement (48), the request's guest SVN (u32) and the request's TCB version (u64). So the same guest on
/// the same chip with the same request gets the same key; a field changes the key only when it is selected; the VMPL
/// always does.
/// </para>
/// </summary>
public static class SnpDerivedKey
{
    /// <summary>enum msg_type (arch/x86/include/asm/sev.h): SNP_MSG_KEY_REQ.</summary>
    public const byte MsgKeyReq = 3;

    /// <summary>enum msg_type: SNP_MSG_KEY_RSP.</summary>
    public const byte MsgKeyRsp = 4;

    /// <summary>sizeof(struct snp_derived_key_req) (message version 1).</summary>
    public const int RequestSize = 32;

    /// <summary>struct snp_derived_key_req field offsets.</summary>
    public const int OffRootKeySelect = 0x00, OffReserved = 0x04, OffGuestFieldSelect = 0x08, OffVmpl = 0x10, OffGuestSvn = 0x14,
        OffTcbVersion = 0x18;

    /// <summary>sizeof(struct snp_derived_key_resp): the MSG_KEY_RSP plaintext.</summary>
    public const int ResponseSize = 64;

    /// <summary>MSG_KEY_RSP: the derived key's offset (after status and 28 reserved bytes) and length.</summary>
    public const int ResponseKeyOffset = 0x20, KeyLength = 32;

    /// <summary>ROOT_KEY_SELECT bit 0: derive from the VMRK instead of the VCEK.</summary>
    public const uint RootKeyVmrk = 1;

    /// <summary>GUEST_FIELD_SELECT bits (ABI MSG_KEY_REQ; snpguest's GuestFieldSelect).</summary>
    public const ulong FieldPolicy = 1 << 0, FieldImageId = 1 << 1, FieldFamilyId = 1 << 2, FieldMeasurement = 1 << 3,
        FieldGuestSvn = 1 << 4, FieldTcbVersion = 1 << 5;

    /// <summary>The GUEST_FIELD_SELECT bits message version 1 defines; the others are reserved.</summary>
    public const ulong FieldsValid = (1 << 6) - 1;

    private static readonly ConditionalWeakTable<SnpPsp.ChipState, byte[]> s_vcekRoot = [];
    private static readonly ConditionalWeakTable<SnpPsp.GuestContext, byte[]> s_vmrk = [];

    private static readonly byte[] s_label = Encoding.ASCII.GetBytes("KvmSharp emulated SNP derived key v1");

    /// <summary>
    /// MSG_KEY_RSP's plaintext for the decrypted request <paramref name="req"/> from the VMPL whose VMPCK sealed it.
    /// Status INVALID_PARAM (and a zero key) for: a request shorter than <see cref="RequestSize"/>; reserved bits of
    /// root_key_select, the reserved word, or reserved guest_field_select bits set; a VMPL above 3 or below the
    /// requester's; a guest_svn above the guest SVN of the launch's ID block (0 without one); a tcb_version with any
    /// component above the chip's committed TCB (ABI MSG_KEY_REQ: "must not exceed CommittedTcb"). As modelled, the
    /// guest SVN and TCB limits are checked whether or not the field is selected.
    /// </summary>
    internal static byte[] Response(EmulatedKernel kernel, SevInfo sev, SnpPsp.GuestContext g, ReadOnlySpan<byte> req, int requesterVmpl)
    {
        var rsp = new byte[ResponseSize];
        if (req.Length < RequestSize) return Invalid(rsp);
        uint rootKeySelect = BinaryPrimitives.ReadUInt32LittleEndian(req[OffRootKeySelect..]);
        uint reserved = BinaryPrimitives.ReadUInt32LittleEndian(req[OffReserved..]);
        ulong fields = BinaryPrimitives.ReadUInt64LittleEndian(req[OffGuestFieldSelect..]);
        uint vmpl = BinaryPrimitives.ReadUInt32LittleEndian(req[OffVmpl..]);
        uint guestSvn = BinaryPrimitives.ReadUInt32LittleEndian(req[OffGuestSvn..]);
        ulong tcb = BinaryPrimitives.ReadUInt64LittleEndian(req[OffTcbVersion..]);
        if ((rootKeySelect & ~RootKeyVmrk) != 0 || reserved != 0 || (fields & ~FieldsValid) != 0) return Invalid(rsp);
        if (vmpl > 3 || vmpl < requesterVmpl) return Invalid(rsp);
        // struct sev_snp_id_block: family_id[16] at 0x30, image_id[16] at 0x40, guest_svn at 0x54.
        uint launchSvn = g.IdBlock is { } id ? BinaryPrimitives.ReadUInt32LittleEndian(id.AsSpan(0x54)) : 0;
        if (guestSvn > launchSvn || !TcbAtMost(tcb, SnpPsp.ChipTcb)) return Invalid(rsp);

        byte[] root = (rootKeySelect & RootKeyVmrk) != 0
            ? s_vmrk.GetValue(g, _ => RandomNumberGenerator.GetBytes(32))
            : s_vcekRoot.GetValue(SnpPsp.Chip(kernel), _ => RandomNumberGenerator.GetBytes(32));
        using var mac = IncrementalHash.CreateHMAC(HashAlgorithmName.SHA256, root);
        mac.AppendData(s_label);
        Span<byte> word = stackalloc byte[8];
        AppendU64(mac, word, rootKeySelect);
        AppendU64(mac, word, vmpl);
        AppendU64(mac, word, fields);
        if ((fields & FieldPolicy) != 0) AppendU64(mac, word, sev.Policy);
        if ((fields & FieldImageId) != 0) mac.AppendData(g.IdBlock is { } i ? i.AsSpan(0x40, 16) : new byte[16]);
        if ((fields & FieldFamilyId) != 0) mac.AppendData(g.IdBlock is { } f ? f.AsSpan(0x30, 16) : new byte[16]);
        if ((fields & FieldMeasurement) != 0) mac.AppendData(g.Measurement);
        if ((fields & FieldGuestSvn) != 0) AppendU64(mac, word, guestSvn);
        if ((fields & FieldTcbVersion) != 0) AppendU64(mac, word, tcb);
        mac.GetHashAndReset().CopyTo(rsp, ResponseKeyOffset);
        return rsp;
    }

    private static byte[] Invalid(byte[] rsp)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(rsp, SnpPsp.SEV_RET_INVALID_PARAM);
        return rsp;
    }

    private static void AppendU64(IncrementalHash mac, Span<byte> word, ulong value)
    {
        BinaryPrimitives.WriteUInt64LittleEndian(word, value);
        mac.AppendData(word);
    }

    /// <summary>
    /// TCB_VERSION comparison (ABI "TCB_VERSION": one SVN per byte — boot loader, TEE, reserved ×4, SNP, microcode):
    /// <paramref name="tcb"/> does not exceed <paramref name="limit"/> when no byte is greater.
    /// </summary>
    private static bool TcbAtMost(ulong tcb, ulong limit)
    {
        for (int b = 0; b < 64; b += 8)
            if (((tcb >> b) & 0xff) > ((limit >> b) & 0xff)) return false;
        return true;
    }
}
