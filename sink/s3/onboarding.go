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
