// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using KvmSharp.Emulation.Arch;
using T = KvmSharp.Emulation.Tests.SnpGuestRequestTests;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// SEV-SNP MSG_KEY_REQ → MSG_KEY_RSP on the emulated PSP (SnpDerivedKey; SEV-SNP Firmware ABI "MSG_KEY_REQ",
/// include/uapi/linux/sev-guest.h struct snp_derived_key_req / snp_derived_key_resp). Through the GHCB as in
/// <see cref="SnpGuestRequestTests"/>, and directly on the model for the field selection (which needs two guests on
/// one emulated chip with different launch fields). The key derivation itself is the emulator's stand-in (HMAC-SHA-256
/// keyed with a per-chip or per-guest root secret), so the tests assert its properties, not AMD's values.
/// </summary>
public sealed class SnpDerivedKeyTests
{
    private const uint InvalidParam = 0x16;
    private const ulong AllFields = 0x3f;

    /// <summary>struct snp_derived_key_req.</summary>
    private static byte[] KeyReq(uint rootKeySelect = 0, ulong fields = 0, uint vmpl = 0, uint guestSvn = 0, ulong tcb = 0, uint reserved = 0)
    {
        var req = new byte[SnpDerivedKey.RequestSize];
        BinaryPrimitives.WriteUInt32LittleEndian(req.AsSpan(SnpDerivedKey.OffRootKeySelect), rootKeySelect);
        BinaryPrimitives.WriteUInt32LittleEndian(req.AsSpan(SnpDerivedKey.OffReserved), reserved);
        BinaryPrimitives.WriteUInt64LittleEndian(req.AsSpan(SnpDerivedKey.OffGuestFieldSelect), fields);
        BinaryPrimitives.WriteUInt32LittleEndian(req.AsSpan(SnpDerivedKey.OffVmpl), vmpl);
        BinaryPrimitives.WriteUInt32LittleEndian(req.AsSpan(SnpDerivedKey.OffGuestSvn), guestSvn);
        BinaryPrimitives.WriteUInt64LittleEndian(req.AsSpan(SnpDerivedKey.OffTcbVersion), tcb);
        return req;
    }

    /// <summary>Seals <paramref name="req"/> with VMPCK <paramref name="vmpckId"/>, issues it through the GHCB and returns MSG_KEY_RSP's plaintext.</summary>
    private static byte[] RequestKey(SevEsGuest g, int vmpckId, ulong seqno, byte[] req)
    {
        byte[] vmpck = T.Vmpck(g, vmpckId);
        T.WriteRequest(g, SnpGuestMessage.Seal(vmpck, (byte)vmpckId, seqno, SnpDerivedKey.MsgKeyReq, 1, req));
        var (info1, info2, _) = T.Issue(g, T.GuestRequest, T.RequestGpa, T.ResponseGpa);
        Assert.Equal((0UL, 0UL), (info1, info2));
        byte[] page = T.ResponsePage(g);
        var h = SnpGuestMessage.ReadHeader(page);
        Assert.Equal(seqno + 1, h.Seqno);
        Assert.Equal(SnpDerivedKey.MsgKeyRsp, h.MsgType);
        Assert.Equal((byte)1, h.MsgVersion);
        Assert.Equal((byte)vmpckId, h.Vmpck);
        Assert.Equal((ushort)SnpDerivedKey.ResponseSize, h.MsgSize);
        byte[]? plain = SnpGuestMessage.Open(vmpck, page);
        Assert.NotNull(plain);
        return plain;
    }

    /// <summary>The key of a successful MSG_KEY_RSP (status 0, reserved bytes zero).</summary>
    private static byte[] Key(byte[] rsp)
    {
        Assert.Equal(0u, BinaryPrimitives.ReadUInt32LittleEndian(rsp));
        Assert.Equal(new byte[28], rsp[4..SnpDerivedKey.ResponseKeyOffset]);
        byte[] key = rsp[SnpDerivedKey.ResponseKeyOffset..];
        Assert.Equal(SnpDerivedKey.KeyLength, key.Length);
        Assert.NotEqual(new byte[SnpDerivedKey.KeyLength], key);
        return key;
    }

    [Fact]
    public void A_key_request_through_the_ghcb_gives_the_same_key_for_the_same_request_and_another_per_vmpl_and_root_key()
    {
        using var g = T.Launch(idBlock: true);
        T.Start(g);
        // All fields, the launch's guest SVN (7, from the ID block) and the chip's committed TCB: the largest allowed.
        byte[] req = KeyReq(fields: AllFields, guestSvn: 7, tcb: SnpPsp.ChipTcb);
        byte[] key = Key(RequestKey(g, 0, 1, req));
        Assert.Equal(key, Key(RequestKey(g, 0, 3, req)));
        // The VMPL is always mixed in: VMPL1 (still allowed from VMPCK0) gives another key.
        byte[] vmpl1 = Key(RequestKey(g, 0, 5, KeyReq(fields: AllFields, vmpl: 1, guestSvn: 7, tcb: SnpPsp.ChipTcb)));
        Assert.NotEqual(key, vmpl1);
        // VMPCK1 (VMPL1) asking for VMPL1 gets the same key as VMPCK0 asking for VMPL1: the VMPL, not the VMPCK, counts.
        Assert.Equal(vmpl1, Key(RequestKey(g, 1, 1, KeyReq(fields: AllFields, vmpl: 1, guestSvn: 7, tcb: SnpPsp.ChipTcb))));
        // The VMRK is another root key.
        byte[] vmrk = Key(RequestKey(g, 0, 7, KeyReq(rootKeySelect: SnpDerivedKey.RootKeyVmrk, fields: AllFields, guestSvn: 7, tcb: SnpPsp.ChipTcb)));
        Assert.NotEqual(key, vmrk);
        // A selected guest SVN or TCB below the current one gives another key (sealing data for an older version).
        Assert.NotEqual(key, Key(RequestKey(g, 0, 9, KeyReq(fields: AllFields, guestSvn: 6, tcb: SnpPsp.ChipTcb))));
        Assert.NotEqual(key, Key(RequestKey(g, 0, 11, KeyReq(fields: AllFields, guestSvn: 7, tcb: SnpPsp.ChipTcb - 1))));
        // Not selected, they do not.
        byte[] none = Key(RequestKey(g, 0, 13, KeyReq(guestSvn: 7, tcb: SnpPsp.ChipTcb)));
        Assert.Equal(none, Key(RequestKey(g, 0, 15, KeyReq(guestSvn: 0, tcb: 0))));
        Assert.NotEqual(key, none);
    }

    [Fact]
    public void Bad_key_requests_get_invalid_param_in_the_authenticated_response_with_a_zero_key()
    {
        using var g = T.Launch(idBlock: true);
        T.Start(g);
        ulong tcb = SnpPsp.ChipTcb;
        var bad = new (string What, int Vmpck, byte[] Req)[]
        {
            ("VMPL below the requester's", 1, KeyReq(vmpl: 0)),
            ("VMPL 4", 0, KeyReq(vmpl: 4)),
            ("root_key_select reserved bit", 0, KeyReq(rootKeySelect: 2)),
            ("reserved word", 0, KeyReq(reserved: 1)),
            ("guest_field_select bit 6 (message version 2 only)", 0, KeyReq(fields: 1UL << 6)),
            ("guest_field_select bit 63", 0, KeyReq(fields: 1UL << 63)),
            ("guest_svn above the launch's", 0, KeyReq(guestSvn: 8)),
            ("guest_svn above the launch's, not selected", 0, KeyReq(fields: SnpDerivedKey.FieldMeasurement, guestSvn: 8)),
            ("microcode SVN above the committed TCB", 0, KeyReq(fields: SnpDerivedKey.FieldTcbVersion, tcb: tcb + (1UL << 56))),
            ("boot loader SVN above, the rest below", 0, KeyReq(tcb: (tcb & ~0xffUL) - (1UL << 56) + 0xff)),
            ("a reserved TCB byte set", 0, KeyReq(tcb: tcb | (1UL << 16))),
            ("request shorter than struct snp_derived_key_req", 0, new byte[16]),
        };
        var seqno = new ulong[] { 1, 1 };
        foreach (var (what, vmpck, req) in bad)
        {
            byte[] rsp = RequestKey(g, vmpck, seqno[vmpck], req);
            seqno[vmpck] += 2;
            Assert.True(BinaryPrimitives.ReadUInt32LittleEndian(rsp) == InvalidParam, what);
            Assert.True(rsp.AsSpan(4).SequenceEqual(new byte[SnpDerivedKey.ResponseSize - 4]), what);
        }
        // Each answered message moved the counter: the next request is the following seqno, and it succeeds.
        Key(RequestKey(g, 0, seqno[0], KeyReq(fields: AllFields, guestSvn: 7, tcb: tcb)));
    }

    [Fact]
    public void Without_an_id_block_the_launch_guest_svn_is_zero()
    {
        using var g = T.Launch();
        T.Start(g);
        Assert.Equal(InvalidParam, BinaryPrimitives.ReadUInt32LittleEndian(RequestKey(g, 0, 1, KeyReq(guestSvn: 1))));
        Key(RequestKey(g, 0, 3, KeyReq(fields: AllFields)));
    }

    /// <summary>The model directly: MSG_KEY_RSP for <paramref name="req"/> from VMPL 0 of guest <paramref name="sev"/> on <paramref name="kernel"/>.</summary>
    private static byte[] Derive(EmulatedKernel kernel, SevInfo sev, byte[] req)
        => Key(SnpDerivedKey.Response(kernel, sev, SnpPsp.Guest(sev), req, requesterVmpl: 0));

    /// <summary>An SNP guest context after SNP_LAUNCH_FINISH with an ID block (guest SVN 7) and the given fields.</summary>
    private static SevInfo Guest(ulong policy = 0x30000, byte measurement = 0x33, byte imageId = 0x22, byte familyId = 0x11)
    {
        var sev = new SevInfo { Policy = policy, FirmwareState = KvmSharp.Emulation.Arch.SevGuestState.Running };
        var g = SnpPsp.Guest(sev);
        var id = new byte[96];
        id.AsSpan(0x30, 16).Fill(familyId);
        id.AsSpan(0x40, 16).Fill(imageId);
        BinaryPrimitives.WriteUInt32LittleEndian(id.AsSpan(0x54), 7);
        g.IdBlock = id;
        g.Measurement = Enumerable.Repeat(measurement, 48).ToArray();
        return sev;
    }

    [Fact]
    public void A_launch_field_changes_the_key_exactly_when_it_is_selected_and_the_vcek_key_is_per_chip_the_vmrk_key_per_guest()
    {
        using var kernel = new EmulatedKernel(EmulatorConfig.X86_64());
        var baseline = Guest();
        var variants = new (string What, ulong Bit, SevInfo Guest)[]
        {
            ("policy", SnpDerivedKey.FieldPolicy, Guest(policy: 0x30000 | (1UL << 19))),
            ("image ID", SnpDerivedKey.FieldImageId, Guest(imageId: 0x23)),
            ("family ID", SnpDerivedKey.FieldFamilyId, Guest(familyId: 0x12)),
            ("measurement", SnpDerivedKey.FieldMeasurement, Guest(measurement: 0x34)),
        };
        foreach (var (what, bit, other) in variants)
            for (ulong fields = 0; fields <= AllFields; fields++)
            {
                byte[] req = KeyReq(fields: fields, guestSvn: 7, tcb: SnpPsp.ChipTcb);
                bool same = Derive(kernel, baseline, req).AsSpan().SequenceEqual(Derive(kernel, other, req));
                Assert.True(same == ((fields & bit) == 0), $"{what}, guest_field_select 0x{fields:X}: same key {same}");
            }
        // Request fields: the guest SVN and TCB version count only when selected.
        foreach (var (what, bit, lower) in new[] { ("guest SVN", SnpDerivedKey.FieldGuestSvn, KeyReq(guestSvn: 6, tcb: SnpPsp.ChipTcb)),
                     ("TCB version", SnpDerivedKey.FieldTcbVersion, KeyReq(guestSvn: 7, tcb: SnpPsp.ChipTcb - 1)) })
            for (ulong fields = 0; fields <= AllFields; fields++)
            {
                byte[] req = KeyReq(fields: fields, guestSvn: 7, tcb: SnpPsp.ChipTcb);
                BinaryPrimitives.WriteUInt64LittleEndian(lower.AsSpan(SnpDerivedKey.OffGuestFieldSelect), fields);
                bool same = Derive(kernel, baseline, req).AsSpan().SequenceEqual(Derive(kernel, baseline, lower));
                Assert.True(same == ((fields & bit) == 0), $"{what}, guest_field_select 0x{fields:X}: same key {same}");
            }
        // Selecting a field is itself part of the derivation: all-zero selected content still differs from unselected.
        Assert.NotEqual(Derive(kernel, baseline, KeyReq()), Derive(kernel, baseline, KeyReq(fields: SnpDerivedKey.FieldGuestSvn)));

        // VCEK-rooted: the same launch fields on the same chip give the same key, on another chip another.
        byte[] vcekReq = KeyReq(fields: AllFields, guestSvn: 7, tcb: SnpPsp.ChipTcb);
        var twin = Guest();
        Assert.Equal(Derive(kernel, baseline, vcekReq), Derive(kernel, twin, vcekReq));
        using var otherChip = new EmulatedKernel(EmulatorConfig.X86_64());
        Assert.NotEqual(Derive(kernel, baseline, vcekReq), Derive(otherChip, baseline, vcekReq));
        // VMRK-rooted: each guest context has its own VMRK, whatever the chip.
        byte[] vmrkReq = KeyReq(rootKeySelect: SnpDerivedKey.RootKeyVmrk, fields: AllFields, guestSvn: 7, tcb: SnpPsp.ChipTcb);
        Assert.NotEqual(Derive(kernel, baseline, vmrkReq), Derive(kernel, twin, vmrkReq));
        Assert.Equal(Derive(kernel, baseline, vmrkReq), Derive(otherChip, baseline, vmrkReq));
    }
}
