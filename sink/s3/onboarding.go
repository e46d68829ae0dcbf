package s3

import (
	"encoding/json"
	"errors"
)

// Onboarding is what the product's console shows a customer who sets up a
// role for an integration: the account to trust, the client's external ID,
// and the role's two policies ready to paste. The permission policy grants
// s3:PutObject on the bucket's objects and nothing else (least privilege:
// hitship only writes).
type Onboarding struct {
	ClientID         int64           `json:"client_id"`
	AccountID        string          `json:"account_id"`  // the AWS account hitship runs as
	ExternalID       string          `json:"external_id"` // the client's, for the sts:ExternalId condition
	Bucket           string          `json:"bucket"`
	PermissionPolicy json.RawMessage `json:"permission_policy"`
	TrustPolicy      json.RawMessage `json:"trust_policy"`
	// SecurityLake is set for a security_lake integration: what the
	// customer passes to CreateCustomLogSource, which makes the role itself
	// (the two policies above are then Security Lake's business).
	SecurityLake *SecurityLakeSource `json:"security_lake,omitempty"`
}

// BucketPlaceholder stands for the bucket in a permission policy made
// before the customer named it.
const BucketPlaceholder = "YOUR-BUCKET"

// NewOnboarding returns the onboarding of clientID: accountID is hitship's
// AWS account (external_id.account_id), secret the external-ID server secret;
// bucket "" puts BucketPlaceholder in the permission policy.
func NewOnboarding(accountID string, secret []byte, clientID int64, bucket string) (Onboarding, error) {
	if accountID == "" || len(secret) == 0 {
		return Onboarding{}, errors.New("set external_id.account_id (hitship's AWS account) and external_id.secret_env or _file: role integrations need them")
	}
	if clientID <= 0 {
		return Onboarding{}, errors.New("client_id must be a positive client account id")
	}
	if bucket == "" {
		bucket = BucketPlaceholder
	}
	o := Onboarding{ClientID: clientID, AccountID: accountID, ExternalID: ExternalID(secret, clientID), Bucket: bucket}
	perm := map[string]any{"Version": "2012-10-17", "Statement": []any{map[string]any{
		"Sid": "HitshipWritesHits", "Effect": "Allow", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::" + bucket + "/*"}}}
	trust := map[string]any{"Version": "2012-10-17", "Statement": []any{map[string]any{
		"Effect": "Allow", "Principal": map[string]any{"AWS": "arn:aws:iam::" + accountID + ":root"}, "Action": "sts:AssumeRole",
		"Condition": map[string]any{"StringEquals": map[string]any{"sts:ExternalId": o.ExternalID}}}}}
	var err error
	if o.PermissionPolicy, err = json.MarshalIndent(perm, "", "  "); err != nil {
		return Onboarding{}, err
	}
	if o.TrustPolicy, err = json.MarshalIndent(trust, "", "  "); err != nil {
		return Onboarding{}, err
	}
	return o, nil
}

// SecurityLakeSource is what a customer passes to Security Lake's
// CreateCustomLogSource to make hitship a custom source: the principal and
// external ID of the provider identity (Security Lake then creates the
// provider role, trusting that principal with that external ID and allowed
// to write the source's location), the event class and the source's name.
// Command is the same as an AWS CLI call, with the customer's Glue crawler
// role left for them to fill in.
type SecurityLakeSource struct {
	Principal     string   `json:"principal"`
	ExternalID    string   `json:"external_id"`
	EventClasses  []string `json:"event_classes"`
	SourceName    string   `json:"source_name"`
	SourceVersion string   `json:"source_version,omitempty"`
	Command       string   `json:"command"`
}

// CrawlerRolePlaceholder stands for the customer's Glue crawler role in
// SecurityLakeSource.Command.
const CrawlerRolePlaceholder = "YOUR-GLUE-CRAWLER-ROLE-ARN"

// NewSecurityLakeSource returns the CreateCustomLogSource values of a
// custom source named sourceName (and sourceVersion, if any) for the
// onboarding o of its client: principal o.AccountID, external ID
// o.ExternalID, event class eventClass.
func NewSecurityLakeSource(o Onboarding, eventClass, sourceName, sourceVersion string) SecurityLakeSource {
	s := SecurityLakeSource{Principal: o.AccountID, ExternalID: o.ExternalID, EventClasses: []string{eventClass},
		SourceName: sourceName, SourceVersion: sourceVersion}
	s.Command = "aws securitylake create-custom-log-source --source-name " + sourceName
	if sourceVersion != "" {
		s.Command += " --source-version " + sourceVersion
	}
	s.Command += " --event-classes " + eventClass +
		" --configuration 'crawlerConfiguration={roleArn=" + CrawlerRolePlaceholder + "},providerIdentity={externalId=" +
		o.ExternalID + ",principal=" + o.AccountID + "}'"
	return s
}
