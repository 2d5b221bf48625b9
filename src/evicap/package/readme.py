"""README.txt of a transfer package: how to check it with sha256sum and openssl only, in en / fr / ar.

The commands are the same in every language (tests run them as written); only the explanations change.
"""

from __future__ import annotations

from typing import Any

COMMANDS = """\
cd {root}
openssl pkeyutl -verify -pubin -inkey signer.pub.pem -rawin -in package.json -sigfile package.sig
sha256sum SHA256SUMS
grep '"sha256sums"' package.json
sha256sum -c --strict SHA256SUMS
openssl pkey -pubin -in signer.pub.pem -outform DER | sha256sum
"""
TIMESTAMP = "openssl ts -verify -data package.json -in package.tsr -CAfile ../TSA-CA.pem\n"
BUNDLE = ("cd bundles/{bundle}\n"
          "openssl pkeyutl -verify -pubin -inkey signer.pub.pem -rawin -in manifest.json -sigfile manifest.sig\n"
          "sha256sum -c --strict SHA256SUMS\n")
BUNDLE_TIMESTAMP = "openssl ts -verify -data manifest.json -in manifest.tsr -CAfile ../../../TSA-CA.pem\n"

TEXT = {
    "en": {
        "title": "Evidence transfer package",
        "intro": "From: {sender}\nTo: {recipient}\nCreated (UTC): {created}\nBundles: {count}. {request}",
        "request": "Request enclosed: {id} (request/).",
        "no_request": "No request enclosed.",
        "steps": "Check it with standard tools (no evicap needed). Run, in the unpacked package:",
        "explain": ("1. The first command must print \"Signature Verified Successfully\": package.json is signed by "
                    "signer.pub.pem.\n2. The SHA-256 printed for SHA256SUMS must equal the value of \"sha256sums\" "
                    "in package.json.\n3. sha256sum -c must print OK for every file.\n4. The last line is the "
                    "signer's key fingerprint: it must equal {fingerprint}, which the sender gives you through "
                    "another channel."),
        "ts": "Trusted timestamp (package.tsr): the command must print \"Verification: OK\" (TSA-CA.pem: the "
              "authority's certificate, obtained from it, put next to the package folder, not inside it).",
        "no_ts": "This package has no trusted timestamp.",
        "bundles": "Each bundle is checked the same way, from its own directory (see its docs):",
        "evicap": "With evicap: evicap verify PACKAGE.zip --trusted-key signer.pub.pem",
    },
    "fr": {
        "title": "Paquet de transmission de preuves",
        "intro": "Expéditeur : {sender}\nDestinataire : {recipient}\nCréé le (UTC) : {created}\nPaquets de preuves : "
                 "{count}. {request}",
        "request": "Demande jointe : {id} (request/).",
        "no_request": "Aucune demande jointe.",
        "steps": "Vérification avec des outils standard (evicap n'est pas nécessaire). Dans le paquet décompressé :",
        "explain": ("1. La première commande doit afficher « Signature Verified Successfully » : package.json est "
                    "signé par signer.pub.pem.\n2. Le SHA-256 affiché pour SHA256SUMS doit être égal à la valeur "
                    "« sha256sums » de package.json.\n3. sha256sum -c doit afficher OK pour chaque fichier.\n"
                    "4. La dernière ligne est l'empreinte de la clé du signataire : elle doit être égale à "
                    "{fingerprint}, communiquée par l'expéditeur par un autre canal."),
        "ts": "Horodatage qualifié (package.tsr) : la commande doit afficher « Verification: OK » (TSA-CA.pem : "
              "certificat de l'autorité d'horodatage, obtenu auprès d'elle, placé à côté du dossier du paquet).",
        "no_ts": "Ce paquet n'est pas horodaté par une autorité.",
        "bundles": "Chaque paquet de preuves se vérifie de la même manière, depuis son propre répertoire :",
        "evicap": "Avec evicap : evicap verify PAQUET.zip --trusted-key signer.pub.pem",
    },
    "ar": {
        "title": "حزمة نقل الأدلة",
        "intro": "المرسل: {sender}\nالمرسل إليه: {recipient}\nتاريخ الإنشاء (UTC): {created}\nعدد حزم الأدلة: {count}. "
                 "{request}",
        "request": "الطلب المرفق: {id} (المجلد request/).",
        "no_request": "لا يوجد طلب مرفق.",
        "steps": "التحقق بأدوات قياسية (لا حاجة إلى evicap). نفذ الأوامر التالية داخل الحزمة بعد فك ضغطها:",
        "explain": ("1. يجب أن يطبع الأمر الأول \"Signature Verified Successfully\": الملف package.json موقع "
                    "بالمفتاح signer.pub.pem.\n2. يجب أن تساوي بصمة SHA-256 المطبوعة للملف SHA256SUMS قيمة "
                    "\"sha256sums\" في package.json.\n3. يجب أن يطبع الأمر sha256sum -c كلمة OK لكل ملف.\n"
                    "4. السطر الأخير هو بصمة مفتاح الموقع: يجب أن تساوي {fingerprint} التي يبلغكم بها المرسل عبر "
                    "قناة أخرى."),
        "ts": "الختم الزمني الموثوق (package.tsr): يجب أن يطبع الأمر \"Verification: OK\" (TSA-CA.pem: شهادة "
              "سلطة الختم الزمني، تحصل عليها منها، وتوضع بجانب مجلد الحزمة لا داخله).",
        "no_ts": "هذه الحزمة لا تحمل ختماً زمنياً موثوقاً.",
        "bundles": "يتم التحقق من كل حزمة أدلة بالطريقة نفسها من داخل مجلدها:",
        "evicap": "باستخدام evicap: evicap verify PACKAGE.zip --trusted-key signer.pub.pem",
    },
}


def readme(lang: str, package: dict[str, Any], root: str, timestamped: bool) -> str:
    t = TEXT[lang]
    request = package.get("request")
    parts = [
        t["title"], "=" * len(t["title"]), "",
        t["intro"].format(sender=package["sender"], recipient=package["recipient"], created=package["created_at"],
                          count=len(package["bundles"]),
                          request=t["request"].format(id=request["id"]) if request else t["no_request"]),
        "", t["steps"], "", COMMANDS.format(root=root),
        t["explain"].format(fingerprint=package["signer_fingerprint"]), "",
        (t["ts"] + "\n\n" + TIMESTAMP) if timestamped else t["no_ts"], "",
        t["bundles"], "",
    ]
    for bundle in package["bundles"]:
        stamp = BUNDLE_TIMESTAMP if bundle.get("timestamped") else ""
        parts.append(BUNDLE.format(bundle=bundle["name"]) + stamp + "cd ../..\n")
    parts += [t["evicap"], ""]
    return "\n".join(parts)
