// SPDX-License-Identifier: MIT
using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace KvmSharp.Emulation.Arch;

/// <summary>
/// An <b>emulated</b> AMD-style certificate chain for the emulated PSP (<see cref="SnpPsp"/>), <b>not AMD's</b>: an
/// emulated ARK (self-signed, RSA-4096, RSASSA-PSS / SHA-384 as AMD's ARK), an emulated ASK signed by it (same
/// algorithm) and an emulated VCEK certificate signed by the ASK (RSASSA-PSS) whose public key is the ECDSA P-384 key
/// that signs this <see cref="EmulatedKernel"/>'s attestation reports (<see cref="SnpAttestation"/>). AMD's
/// extensions (product name, TCB SPLs, HWID OIDs 1.3.6.1.4.1.3704.*) are not written. A VMM hands these to the guest
/// through KVM_EXIT_SNP_REQ_CERTS in an SNP certificate table. One chain per emulated kernel, made on first use.
/// </summary>
public sealed class SnpEmulatedCertificates
{
    private static readonly ConditionalWeakTable<EmulatedKernel, SnpEmulatedCertificates> s_chains = [];

    /// <summary>The emulated ARK (self-signed root), DER.</summary>
    public byte[] Ark { get; }

    /// <summary>The emulated ASK (signed by <see cref="Ark"/>), DER.</summary>
    public byte[] Ask { get; }

    /// <summary>The emulated VCEK certificate (signed by <see cref="Ask"/>; its key signs the reports), DER.</summary>
    public byte[] Vcek { get; }

    private SnpEmulatedCertificates(byte[] ark, byte[] ask, byte[] vcek)
    {
        Ark = ark;
        Ask = ask;
        Vcek = vcek;
    }

    /// <summary>The emulated chain of <paramref name="kernel"/>'s emulated chip.</summary>
    public static SnpEmulatedCertificates For(EmulatedKernel kernel)
    {
        ArgumentNullException.ThrowIfNull(kernel);
        return s_chains.GetValue(kernel, Create);
    }

    private static SnpEmulatedCertificates Create(EmulatedKernel kernel)
    {
        var notBefore = new DateTimeOffset(2020, 1, 1, 0, 0, 0, TimeSpan.Zero);
        var notAfter = new DateTimeOffset(2045, 1, 1, 0, 0, 0, TimeSpan.Zero);
        var pss = RSASignaturePadding.Pss;
        using var arkKey = RSA.Create(4096);
        using var askKey = RSA.Create(4096);
        var arkName = new X500DistinguishedName("CN=EMULATED-ARK not AMD, O=KvmSharp emulator");
        var askName = new X500DistinguishedName("CN=EMULATED-ASK not AMD, O=KvmSharp emulator");
        var arkReq = new CertificateRequest(arkName, arkKey, HashAlgorithmName.SHA384, pss);
        arkReq.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        arkReq.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        using var ark = arkReq.CreateSelfSigned(notBefore, notAfter);
        var askReq = new CertificateRequest(askName, askKey, HashAlgorithmName.SHA384, pss);
        askReq.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, true, 0, true));
        askReq.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        using var ask = askReq.Create(arkName, X509SignatureGenerator.CreateForRSA(arkKey, pss), notBefore, notAfter, [1]);
        var vcekReq = new CertificateRequest(new X500DistinguishedName("CN=EMULATED-VCEK not AMD, O=KvmSharp emulator"),
            new PublicKey(SnpPsp.Chip(kernel).Vcek), HashAlgorithmName.SHA384, pss);
        vcekReq.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        vcekReq.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, true));
        using var vcek = vcekReq.Create(askName, X509SignatureGenerator.CreateForRSA(askKey, pss), notBefore, notAfter, [2]);
        return new SnpEmulatedCertificates(ark.RawData, ask.RawData, vcek.RawData);
    }
}
