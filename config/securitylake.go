package config

import (
	"cmp"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Integration types (Integration.Type).
const (
	// TypeS3 is the customer's own bucket: objects under the integration's
	// prefix, in the format it chooses. The default.
	TypeS3 = "s3"
	// TypeSecurityLake is a custom source of Amazon Security Lake: OCSF
	// records as Parquet (format ocsf-parquet) under the key layout Security
	// Lake's custom sources must follow (SecurityLakePrefix), written with
	// the provider role that CreateCustomLogSource made, assumed with the
	// client's external ID. Staged delivery only.
	TypeSecurityLake = "security_lake"
)

// SecurityLakeEventClass is the OCSF event class hitship's records belong to,
// as CreateCustomLogSource names it (eventClasses).
const SecurityLakeEventClass = "HTTP_ACTIVITY"

// SecurityLake configures an integration of type security_lake: where
// Security Lake expects the custom source's objects. CreateCustomLogSource
// answers with the source's location, s3://{bucket}/ext/{source_name}/ (with
// /{source_version}/ when the source was created with a version): bucket
// goes in the integration's bucket, the rest here.
type SecurityLake struct {
	// SourceName is the custom source's name (sourceName), at most 20
	// characters: Security Lake names the provider role after it.
	SourceName string `yaml:"source_name" json:"source_name"`
	// SourceVersion is the custom source's version (sourceVersion), when it
	// was created with one; it is then a folder of the location.
	SourceVersion string `yaml:"source_version" json:"source_version,omitempty"`
	// AccountID fills the accountId= partition: the 12-digit AWS account the
	// records are about. Default: the account of credentials.role_arn (the
	// provider role lives in the lake's account).
	AccountID string `yaml:"account_id" json:"account_id,omitempty"`
}

// IsZero reports whether nothing of s is set.
func (s SecurityLake) IsZero() bool { return s == SecurityLake{} }

// IsSecurityLake reports whether in is a security_lake integration.
func (in Integration) IsSecurityLake() bool { return in.Type == TypeSecurityLake }

// SecurityLakeAccount is the accountId partition of a security_lake
// integration: security_lake.account_id, or the account of its role ARN;
// "" when neither names one.
func (in Integration) SecurityLakeAccount() string {
	if in.SecurityLake.AccountID != "" {
		return in.SecurityLake.AccountID
	}
	// arn:aws:iam::123456789012:role/...
	parts := strings.SplitN(in.Credentials.RoleARN, ":", 6)
	if len(parts) == 6 && accountIDRE.MatchString(parts[4]) {
		return parts[4]
	}
	return ""
}

// KeyPrefix is where the integration's objects go in its bucket: its
// prefix, or for a security_lake integration Security Lake's partitions
// above the day, "ext/{source_name}/[{source_version}/]region={region}/
// accountId={account}/" (the object keys add "eventDay={YYYYMMDD}/").
func (in Integration) KeyPrefix() string {
	if !in.IsSecurityLake() {
		return in.Prefix
	}
	var b strings.Builder
	b.WriteString("ext/")
	b.WriteString(in.SecurityLake.SourceName)
	b.WriteString("/")
	if in.SecurityLake.SourceVersion != "" {
		b.WriteString(in.SecurityLake.SourceVersion)
		b.WriteString("/")
	}
	b.WriteString("region=")
	b.WriteString(in.Region)
	b.WriteString("/accountId=")
	b.WriteString(in.SecurityLakeAccount())
	b.WriteString("/")
	return b.String()
}

// DefaultFormat is the format of an integration of type typ that names none:
// ocsf-parquet for security_lake, json otherwise.
func DefaultFormat(typ string) string {
	if typ == TypeSecurityLake {
		return FormatOCSFParquet
	}
	return FormatJSON
}

// formatGiven reports whether the mapping node n of an integration names its
// format.
func formatGiven(n *yaml.Node) bool {
	if n.Kind != yaml.MappingNode {
		return false
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == "format" {
			return true
		}
	}
	return false
}

var (
	// sourceNameRE: Security Lake's custom source names, at most 20
	// characters so that the provider role's name fits IAM's 64.
	sourceNameRE    = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,19}$`)
	sourceVersionRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$`)
)

// ValidSourceName reports whether name is a custom source name hitship
// accepts (security_lake.source_name): 1-20 letters, digits, '.', '_' or '-'.
func ValidSourceName(name string) bool { return sourceNameRE.MatchString(name) }

// ValidSourceVersion reports whether v is a source version hitship accepts
// (security_lake.source_version), "" included.
func ValidSourceVersion(v string) bool { return v == "" || sourceVersionRE.MatchString(v) }

// securityLake checks what an integration's type asks of it.
func (v *checker) securityLake(key string, c *Config, in *Integration) {
	if in.Type != "" {
		v.enum(key+".type", in.Type, TypeS3, TypeSecurityLake)
	}
	if !in.IsSecurityLake() {
		if !in.SecurityLake.IsZero() {
			v.add(key+".security_lake", "set type: security_lake, or remove security_lake", "is set on an integration of type %s", cmp.Or(in.Type, TypeS3))
		}
		return
	}
	sl := in.SecurityLake
	switch {
	case sl.SourceName == "":
		v.add(key+".security_lake.source_name", "set the custom source's name, as given to CreateCustomLogSource", "is required")
	case !ValidSourceName(sl.SourceName):
		v.add(key+".security_lake.source_name", "use 1-20 letters, digits, '.', '_' or '-', starting with a letter or digit (Security Lake names the provider role after it; IAM role names hold 64 characters)", "invalid source name %q", sl.SourceName)
	}
	if !ValidSourceVersion(sl.SourceVersion) {
		v.add(key+".security_lake.source_version", "write the sourceVersion the custom source was created with (letters, digits, '.', '_', '-'), or leave it empty", "invalid source version %q", sl.SourceVersion)
	}
	switch {
	case sl.AccountID != "" && !accountIDRE.MatchString(sl.AccountID):
		v.add(key+".security_lake.account_id", "write the 12-digit AWS account id of the lake", "invalid account id %q", sl.AccountID)
	case in.SecurityLakeAccount() == "":
		v.add(key+".security_lake.account_id", "set security_lake.account_id, or credentials.role_arn to the provider role (its account is taken)", "no account for the accountId= partition")
	}
	if in.Format != FormatOCSFParquet {
		v.add(key+".format", "remove format or set ocsf-parquet: Security Lake takes OCSF records in Parquet", "%s with type security_lake", in.Format)
	}
	if in.Compression != CompressionNone {
		v.add(key+".compression", "remove compression: a Parquet file is compressed inside (zstd)", "%s with type security_lake", in.Compression)
	}
	if in.Prefix != "" {
		v.add(key+".prefix", "remove prefix: Security Lake's layout ext/{source_name}/region=…/accountId=…/eventDay=…/ decides the keys", "is set with type security_lake")
	}
	if in.Manifest {
		v.add(key+".manifest", "remove manifest: Security Lake's crawler would read manifests as data", "is set with type security_lake")
	}
	if in.Credentials.RoleARN == "" && in.Credentials.AccessKeyID != "" {
		v.add(key+".credentials", "set role_arn to the provider role CreateCustomLogSource made (AmazonSecurityLake-Provider-{source}-{region}); Security Lake gives no access keys", "access_key_id with type security_lake")
	}
	if !c.StagedDelivery() {
		v.add(key+".type", "configure a staging bucket (parking.bucket) and leave delivery.staged unset or true: Security Lake takes one Parquet object per window", "security_lake needs staged delivery")
	}
}
