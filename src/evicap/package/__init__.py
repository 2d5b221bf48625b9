"""Transfer packages: bundles, their reports and a request in one signed, timestamped zip the recipient checks.

    build.py    evicap package: custody 'transferred' events, copy, package.json, signature, token, zip
    readme.py   the README in the recipient's language, with the stock-tool commands (sha256sum, openssl)
    verify.py   evicap verify FILE.zip / DIR: safe unpacking, the package's own checks, then every bundle
"""
