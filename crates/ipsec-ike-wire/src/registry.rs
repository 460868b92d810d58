//! IKEv2 registries (IANA "Internet Key Exchange Version 2 (IKEv2) Parameters") as open
//! newtypes: every value on the wire is representable, the known ones have names.
//!
//! The transform registries (transform types and ids) live in [`ipsec_core::iana`].

use ipsec_core::registry;

registry! {
    /// IKEv2 Payload Types (RFC 7296 §3.2, RFC 7383 §2.5).
    PayloadType(u8) {
        /// No Next Payload: the end of a chain.
        NONE = 0,
        /// Security Association (§3.3).
        SA = 33,
        /// Key Exchange (§3.4).
        KE = 34,
        /// Identification - Initiator (§3.5).
        IDI = 35,
        /// Identification - Responder (§3.5).
        IDR = 36,
        /// Certificate (§3.6).
        CERT = 37,
        /// Certificate Request (§3.7).
        CERTREQ = 38,
        /// Authentication (§3.8).
        AUTH = 39,
        /// Nonce (§3.9).
        NONCE = 40,
        /// Notify (§3.10).
        NOTIFY = 41,
        /// Delete (§3.11).
        DELETE = 42,
        /// Vendor ID (§3.12).
        VENDOR_ID = 43,
        /// Traffic Selector - Initiator (§3.13).
        TSI = 44,
        /// Traffic Selector - Responder (§3.13).
        TSR = 45,
        /// Encrypted and Authenticated (§3.14).
        SK = 46,
        /// Configuration (§3.15).
        CP = 47,
        /// Extensible Authentication (§3.16).
        EAP = 48,
        /// Generic Secure Password Method (RFC 6467).
        GSPM = 49,
        /// Group Identification (RFC 9838 G-IKEv2).
        IDG = 50,
        /// Group Security Association (G-IKEv2).
        GSA = 51,
        /// Key Download (G-IKEv2).
        KD = 52,
        /// Encrypted and Authenticated Fragment (RFC 7383 §2.5).
        SKF = 53,
        /// Puzzle Solution (RFC 8019).
        PS = 54,
    }
}

impl PayloadType {
    /// True for the payload types this crate parses into a typed repr.
    pub const fn is_known(self) -> bool {
        matches!(self.0, 33..=48 | 53)
    }

    /// True for SK and SKF, which must be the last payload of a message.
    pub const fn is_encrypted(self) -> bool {
        matches!(self.0, 46 | 53)
    }
}

registry! {
    /// IKEv2 Exchange Types (RFC 7296 §3.1).
    ExchangeType(u8) {
        /// IKE_SA_INIT.
        IKE_SA_INIT = 34,
        /// IKE_AUTH.
        IKE_AUTH = 35,
        /// CREATE_CHILD_SA.
        CREATE_CHILD_SA = 36,
        /// INFORMATIONAL.
        INFORMATIONAL = 37,
        /// IKE_SESSION_RESUME (RFC 5723).
        IKE_SESSION_RESUME = 38,
        /// GSA_AUTH (G-IKEv2).
        GSA_AUTH = 39,
        /// GSA_REGISTRATION (G-IKEv2).
        GSA_REGISTRATION = 40,
        /// GSA_REKEY (G-IKEv2).
        GSA_REKEY = 41,
        /// IKE_INTERMEDIATE (RFC 9242).
        IKE_INTERMEDIATE = 43,
        /// IKE_FOLLOWUP_KE (RFC 9370).
        IKE_FOLLOWUP_KE = 44,
    }
}

registry! {
    /// Security Protocol Identifiers (RFC 7296 §3.3.1), as used in proposals, Notify
    /// and Delete payloads.
    ProtocolId(u8) {
        /// None: a Notify that concerns no SA.
        NONE = 0,
        /// IKE.
        IKE = 1,
        /// AH.
        AH = 2,
        /// ESP.
        ESP = 3,
    }
}

registry! {
    /// IKEv2 Notify Message Types (RFC 7296 §3.10.1 and the IANA registry).
    ///
    /// Types 0..=16383 report errors, 16384..=65535 carry status
    /// ([`NotifyType::is_error`]); 8192..=16383 and 40960..=65535 are private use.
    NotifyType(u16) {
        /// A critical payload type in the request was not recognized.
        UNSUPPORTED_CRITICAL_PAYLOAD = 1,
        /// The message's IKE SPI is not known.
        INVALID_IKE_SPI = 4,
        /// The major version is not supported; the response carries ours.
        INVALID_MAJOR_VERSION = 5,
        /// A type, length or value was out of range.
        INVALID_SYNTAX = 7,
        /// The Message ID was outside the window.
        INVALID_MESSAGE_ID = 9,
        /// An ESP or AH packet used an unknown SPI.
        INVALID_SPI = 11,
        /// None of the proposals was acceptable.
        NO_PROPOSAL_CHOSEN = 14,
        /// The KE payload's group is not the one wanted.
        INVALID_KE_PAYLOAD = 17,
        /// Authentication failed.
        AUTHENTICATION_FAILED = 24,
        /// Only a single pair of selectors is acceptable.
        SINGLE_PAIR_REQUIRED = 34,
        /// No more Child SAs are accepted on this IKE SA.
        NO_ADDITIONAL_SAS = 35,
        /// No internal address could be assigned.
        INTERNAL_ADDRESS_FAILURE = 36,
        /// A CP payload was required but absent.
        FAILED_CP_REQUIRED = 37,
        /// The traffic selectors are not acceptable.
        TS_UNACCEPTABLE = 38,
        /// A packet did not match the SA's selectors.
        INVALID_SELECTORS = 39,
        /// MOBIKE: the addresses are not acceptable (RFC 4555).
        UNACCEPTABLE_ADDRESSES = 40,
        /// MOBIKE: a NAT was detected where none is allowed (RFC 4555).
        UNEXPECTED_NAT_DETECTED = 41,
        /// Mobile IPv6: use the assigned home address (RFC 5026).
        USE_ASSIGNED_HOA = 42,
        /// A temporary failure, try again later.
        TEMPORARY_FAILURE = 43,
        /// The Child SA to rekey was not found.
        CHILD_SA_NOT_FOUND = 44,
        /// G-IKEv2: the group id is not valid.
        INVALID_GROUP_ID = 45,
        /// G-IKEv2: not authorized for the group.
        AUTHORIZATION_FAILED = 46,
        /// Session resumption state not found (RFC 8019 / RFC 5723).
        STATE_NOT_FOUND = 47,
        /// The sender deletes old state on the peer (a fresh start).
        INITIAL_CONTACT = 16384,
        /// The sender's request window size.
        SET_WINDOW_SIZE = 16385,
        /// Further traffic selectors would be acceptable.
        ADDITIONAL_TS_POSSIBLE = 16386,
        /// IP compression is supported.
        IPCOMP_SUPPORTED = 16387,
        /// NAT detection: hash of the source address and port.
        NAT_DETECTION_SOURCE_IP = 16388,
        /// NAT detection: hash of the destination address and port.
        NAT_DETECTION_DESTINATION_IP = 16389,
        /// A stateless cookie (§2.6).
        COOKIE = 16390,
        /// Transport mode is requested.
        USE_TRANSPORT_MODE = 16391,
        /// Hash and URL certificate lookup is supported.
        HTTP_CERT_LOOKUP_SUPPORTED = 16392,
        /// This CREATE_CHILD_SA rekeys the SA with the given SPI.
        REKEY_SA = 16393,
        /// ESP TFC padding is not supported.
        ESP_TFC_PADDING_NOT_SUPPORTED = 16394,
        /// Non-first fragments are sent on this SA too.
        NON_FIRST_FRAGMENTS_ALSO = 16395,
        /// MOBIKE is supported (RFC 4555).
        MOBIKE_SUPPORTED = 16396,
        /// MOBIKE: an additional IPv4 address.
        ADDITIONAL_IP4_ADDRESS = 16397,
        /// MOBIKE: an additional IPv6 address.
        ADDITIONAL_IP6_ADDRESS = 16398,
        /// MOBIKE: no additional addresses.
        NO_ADDITIONAL_ADDRESSES = 16399,
        /// MOBIKE: update the SA addresses.
        UPDATE_SA_ADDRESSES = 16400,
        /// MOBIKE: return routability check.
        COOKIE2 = 16401,
        /// MOBIKE: NATs are not allowed.
        NO_NATS_ALLOWED = 16402,
        /// Reauthentication lifetime (RFC 4478).
        AUTH_LIFETIME = 16403,
        /// Multiple authentication exchanges are supported (RFC 4739).
        MULTIPLE_AUTH_SUPPORTED = 16404,
        /// Another authentication round follows (RFC 4739).
        ANOTHER_AUTH_FOLLOWS = 16405,
        /// Redirection is supported (RFC 5685).
        REDIRECT_SUPPORTED = 16406,
        /// Redirect to another gateway (RFC 5685).
        REDIRECT = 16407,
        /// The initiator was redirected from a gateway (RFC 5685).
        REDIRECTED_FROM = 16408,
        /// Session resumption: ticket lifetime and opaque ticket (RFC 5723).
        TICKET_LT_OPAQUE = 16409,
        /// Session resumption: ticket request.
        TICKET_REQUEST = 16410,
        /// Session resumption: ticket acknowledged.
        TICKET_ACK = 16411,
        /// Session resumption: ticket refused.
        TICKET_NACK = 16412,
        /// Session resumption: opaque ticket.
        TICKET_OPAQUE = 16413,
        /// Link identifier (RFC 5739).
        LINK_ID = 16414,
        /// Use WESP mode (RFC 5840).
        USE_WESP_MODE = 16415,
        /// Robust header compression is supported (RFC 5857).
        ROHC_SUPPORTED = 16416,
        /// EAP-only authentication (RFC 5998).
        EAP_ONLY_AUTHENTICATION = 16417,
        /// Childless IKE SAs are supported (RFC 6023).
        CHILDLESS_IKEV2_SUPPORTED = 16418,
        /// Quick crash detection (RFC 6290).
        QUICK_CRASH_DETECTION = 16419,
        /// Message ID synchronization is supported (RFC 6311).
        IKEV2_MESSAGE_ID_SYNC_SUPPORTED = 16420,
        /// Replay counter synchronization is supported (RFC 6311).
        IPSEC_REPLAY_COUNTER_SYNC_SUPPORTED = 16421,
        /// Message ID synchronization (RFC 6311).
        IKEV2_MESSAGE_ID_SYNC = 16422,
        /// Replay counter synchronization (RFC 6311).
        IPSEC_REPLAY_COUNTER_SYNC = 16423,
        /// Secure password methods (RFC 6467).
        SECURE_PASSWORD_METHODS = 16424,
        /// PSK persistence (RFC 6631).
        PSK_PERSIST = 16425,
        /// PSK confirmation (RFC 6631).
        PSK_CONFIRM = 16426,
        /// EAP re-authentication is supported (RFC 6867).
        ERX_SUPPORTED = 16427,
        /// Interface flow mobility capability (3GPP).
        IFOM_CAPABILITY = 16428,
        /// Sender request id (G-IKEv2).
        SENDER_REQUEST_ID = 16429,
        /// IKEv2 fragmentation is supported (RFC 7383).
        IKEV2_FRAGMENTATION_SUPPORTED = 16430,
        /// Supported signature hash algorithms (RFC 7427).
        SIGNATURE_HASH_ALGORITHMS = 16431,
        /// IKE SA cloning is supported (RFC 7791).
        CLONE_IKE_SA_SUPPORTED = 16432,
        /// Clone the IKE SA (RFC 7791).
        CLONE_IKE_SA = 16433,
        /// A client puzzle (RFC 8019).
        PUZZLE = 16434,
        /// Use a post-quantum preshared key (RFC 8784).
        USE_PPK = 16435,
        /// The PPK identity (RFC 8784).
        PPK_IDENTITY = 16436,
        /// AUTH computed without the PPK (RFC 8784).
        NO_PPK_AUTH = 16437,
        /// IKE_INTERMEDIATE is supported (RFC 9242).
        INTERMEDIATE_EXCHANGE_SUPPORTED = 16438,
        /// IPv4 is allowed (RFC 8983).
        IP4_ALLOWED = 16439,
        /// IPv6 is allowed (RFC 8983).
        IP6_ALLOWED = 16440,
        /// An additional key exchange (RFC 9370).
        ADDITIONAL_KEY_EXCHANGE = 16441,
        /// Use aggregation and fragmentation mode (RFC 9347).
        USE_AGGFRAG = 16442,
        /// Supported authentication methods (RFC 9593).
        SUPPORTED_AUTH_METHODS = 16443,
    }
}

impl NotifyType {
    /// True for error types (0..=16383, RFC 7296 §3.10.1).
    pub const fn is_error(self) -> bool {
        self.0 < 16384
    }

    /// True for status types (16384..=65535).
    pub const fn is_status(self) -> bool {
        !self.is_error()
    }

    /// True for the private-use ranges 8192..=16383 (errors) and 40960..=65535 (status).
    pub const fn is_private_use(self) -> bool {
        matches!(self.0, 8192..=16383 | 40960..=65535)
    }
}

registry! {
    /// Identification types (RFC 7296 §3.5).
    IdType(u8) {
        /// A single four-octet IPv4 address.
        ID_IPV4_ADDR = 1,
        /// A fully qualified domain name string, without terminator.
        ID_FQDN = 2,
        /// An RFC 822 email address string, without terminator.
        ID_RFC822_ADDR = 3,
        /// A single sixteen-octet IPv6 address.
        ID_IPV6_ADDR = 5,
        /// The DER encoding of an ASN.1 X.500 Distinguished Name.
        ID_DER_ASN1_DN = 9,
        /// The DER encoding of an ASN.1 X.509 GeneralName.
        ID_DER_ASN1_GN = 10,
        /// An opaque octet stream for vendor-specific information.
        ID_KEY_ID = 11,
        /// Fibre Channel name (RFC 4595).
        ID_FC_NAME = 12,
        /// No identity (RFC 7619).
        ID_NULL = 13,
    }
}

registry! {
    /// Certificate encodings (RFC 7296 §3.6).
    CertEncoding(u8) {
        /// PKCS #7 wrapped X.509 certificate (deprecated).
        PKCS7_WRAPPED_X509 = 1,
        /// PGP certificate.
        PGP_CERT = 2,
        /// DNS signed key.
        DNS_SIGNED_KEY = 3,
        /// X.509 certificate - signature.
        X509_CERT_SIG = 4,
        /// Kerberos token.
        KERBEROS_TOKEN = 6,
        /// Certificate revocation list.
        CRL = 7,
        /// Authority revocation list.
        ARL = 8,
        /// SPKI certificate.
        SPKI_CERT = 9,
        /// X.509 certificate - attribute.
        X509_CERT_ATTR = 10,
        /// Raw RSA key (deprecated).
        RAW_RSA_KEY = 11,
        /// Hash and URL of an X.509 certificate.
        HASH_URL_X509_CERT = 12,
        /// Hash and URL of an X.509 bundle.
        HASH_URL_X509_BUNDLE = 13,
        /// OCSP content (RFC 4806).
        OCSP_CONTENT = 14,
        /// Raw public key (RFC 7670).
        RAW_PUBLIC_KEY = 15,
    }
}

registry! {
    /// Authentication methods (RFC 7296 §3.8).
    AuthMethod(u8) {
        /// RSA digital signature with SHA-1 (PKCS #1 v1.5).
        RSA_SIG = 1,
        /// Shared key message integrity code.
        SHARED_KEY_MIC = 2,
        /// DSS digital signature.
        DSS_SIG = 3,
        /// ECDSA with SHA-256 on P-256 (RFC 4754).
        ECDSA_SHA256_P256 = 9,
        /// ECDSA with SHA-384 on P-384 (RFC 4754).
        ECDSA_SHA384_P384 = 10,
        /// ECDSA with SHA-512 on P-521 (RFC 4754).
        ECDSA_SHA512_P521 = 11,
        /// Generic secure password authentication (RFC 6467).
        GSPAM = 12,
        /// NULL authentication (RFC 7619).
        NULL_AUTH = 13,
        /// Digital signature (RFC 7427).
        DIGITAL_SIGNATURE = 14,
    }
}

registry! {
    /// Traffic selector types (RFC 7296 §3.13.1).
    TsType(u8) {
        /// An IPv4 address range.
        TS_IPV4_ADDR_RANGE = 7,
        /// An IPv6 address range.
        TS_IPV6_ADDR_RANGE = 8,
        /// A Fibre Channel address range (RFC 4595).
        TS_FC_ADDR_RANGE = 9,
        /// A security label (RFC 9478).
        TS_SECLABEL = 10,
    }
}

registry! {
    /// Configuration payload types (RFC 7296 §3.15).
    CfgType(u8) {
        /// CFG_REQUEST.
        CFG_REQUEST = 1,
        /// CFG_REPLY.
        CFG_REPLY = 2,
        /// CFG_SET.
        CFG_SET = 3,
        /// CFG_ACK.
        CFG_ACK = 4,
    }
}

registry! {
    /// Configuration attribute types (RFC 7296 §3.15.1); 15 bits on the wire.
    CfgAttrType(u16) {
        /// An internal IPv4 address.
        INTERNAL_IP4_ADDRESS = 1,
        /// The internal network's IPv4 netmask.
        INTERNAL_IP4_NETMASK = 2,
        /// An IPv4 DNS server.
        INTERNAL_IP4_DNS = 3,
        /// An IPv4 NetBIOS name server.
        INTERNAL_IP4_NBNS = 4,
        /// An IPv4 DHCP server.
        INTERNAL_IP4_DHCP = 6,
        /// The application version string.
        APPLICATION_VERSION = 7,
        /// An internal IPv6 address and prefix length.
        INTERNAL_IP6_ADDRESS = 8,
        /// An IPv6 DNS server.
        INTERNAL_IP6_DNS = 10,
        /// An IPv6 DHCP server.
        INTERNAL_IP6_DHCP = 12,
        /// A protected IPv4 subnet.
        INTERNAL_IP4_SUBNET = 13,
        /// The attribute types the sender supports.
        SUPPORTED_ATTRIBUTES = 14,
        /// A protected IPv6 subnet.
        INTERNAL_IP6_SUBNET = 15,
        /// MIPv6 home prefix (RFC 5026).
        MIP6_HOME_PREFIX = 16,
        /// An IPv6 link-local interface id (RFC 5739).
        INTERNAL_IP6_LINK = 17,
        /// An IPv6 prefix (RFC 5739).
        INTERNAL_IP6_PREFIX = 18,
        /// Home agent address (RFC 5026).
        HOME_AGENT_ADDRESS = 19,
        /// P-CSCF IPv4 address (RFC 7651).
        P_CSCF_IP4_ADDRESS = 20,
        /// P-CSCF IPv6 address (RFC 7651).
        P_CSCF_IP6_ADDRESS = 21,
        /// FTT KAT (3GPP).
        FTT_KAT = 22,
        /// External source IPv4 NAT info (RFC 7658).
        EXTERNAL_SOURCE_IP4_NAT_INFO = 23,
        /// Timeout period for liveness check (3GPP).
        TIMEOUT_PERIOD_FOR_LIVENESS_CHECK = 24,
        /// Internal DNS domain (RFC 8598).
        INTERNAL_DNS_DOMAIN = 25,
        /// Internal DNSSEC trust anchor (RFC 8598).
        INTERNAL_DNSSEC_TA = 26,
    }
}
