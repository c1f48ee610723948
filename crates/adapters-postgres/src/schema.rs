//! The one diesel schema both backends share (see `migrations/postgres` and `migrations/sqlite`).

diesel::table! {
    users (id) {
        id -> Text,
        email -> Text,
        balance -> BigInt,
        created_at -> BigInt,
    }
}

diesel::table! {
    credit_ledger (seq) {
        seq -> BigInt,
        user_id -> Text,
        delta -> BigInt,
        balance_after -> BigInt,
        reason -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    api_keys (id) {
        id -> Text,
        user_id -> Text,
        name -> Text,
        preview -> Text,
        key_hash -> Binary,
        status -> Text,
        revoked_at -> Nullable<BigInt>,
        revokes_at -> Nullable<BigInt>,
        created_at -> BigInt,
        last_used_at -> Nullable<BigInt>,
        usage_count -> BigInt,
        revocation_reason -> Nullable<Text>,
        expires_at -> Nullable<BigInt>,
        allowed_networks -> Nullable<Text>,
        monthly_credit_limit -> Nullable<BigInt>,
        scopes -> Nullable<Text>,
        expiry_reminded_days -> Nullable<Integer>,
    }
}

diesel::table! {
    key_clients (seq) {
        seq -> BigInt,
        key_id -> Text,
        network -> Text,
        user_agent -> Text,
        first_seen -> BigInt,
        last_seen -> BigInt,
        requests -> BigInt,
        browser -> Bool,
    }
}

diesel::table! {
    key_signals (key_id, signal) {
        key_id -> Text,
        signal -> Text,
        last_at -> BigInt,
    }
}

diesel::table! {
    key_monthly_spend (key_id, month) {
        key_id -> Text,
        month -> BigInt,
        spent -> BigInt,
    }
}

diesel::table! {
    key_events (seq) {
        seq -> BigInt,
        key_id -> Text,
        kind -> Text,
        actor -> Text,
        at -> BigInt,
        detail -> Text,
    }
}

diesel::table! {
    templates (id) {
        id -> Text,
        name -> Text,
        premium -> Bool,
        price -> BigInt,
        body -> Text,
        sort_order -> Integer,
    }
}

diesel::table! {
    template_ownership (user_id, template_id) {
        user_id -> Text,
        template_id -> Text,
        acquired_at -> BigInt,
    }
}

diesel::table! {
    documents (id) {
        id -> Text,
        user_id -> Text,
        template_id -> Text,
        content -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    key_alerts (key_id) {
        key_id -> Text,
        last_alert_at -> BigInt,
    }
}

diesel::table! {
    email_outbox (id) {
        id -> Text,
        key_id -> Nullable<Text>,
        to_address -> Text,
        subject -> Text,
        body -> Text,
        attempts -> Integer,
        next_attempt_at -> BigInt,
        locked_until -> Nullable<BigInt>,
        sent_at -> Nullable<BigInt>,
        last_error -> Nullable<Text>,
        created_at -> BigInt,
        abandoned_at -> Nullable<BigInt>,
        kind -> Text,
    }
}

diesel::table! {
    settings (name) {
        name -> Text,
        value -> Text,
    }
}

diesel::table! {
    dashboard_token_cutoffs (user_id) {
        user_id -> Text,
        cutoff -> BigInt,
    }
}

diesel::table! {
    idempotency_records (lookup) {
        lookup -> Binary,
        request -> Binary,
        sealed -> Nullable<Binary>,
        created_at -> BigInt,
        expires_at -> BigInt,
    }
}

diesel::table! {
    sign_in_links (id) {
        id -> Text,
        user_id -> Text,
        token_hash -> Binary,
        created_at -> BigInt,
        expires_at -> BigInt,
        used_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    key_usage_hours (key_id, hour_start) {
        key_id -> Text,
        hour_start -> BigInt,
        count -> BigInt,
    }
}

diesel::joinable!(credit_ledger -> users (user_id));
diesel::joinable!(api_keys -> users (user_id));
diesel::joinable!(documents -> users (user_id));
diesel::joinable!(template_ownership -> templates (template_id));

diesel::allow_tables_to_appear_in_same_query!(
    users,
    key_monthly_spend,
    key_clients,
    key_signals,
    credit_ledger,
    api_keys,
    templates,
    template_ownership,
    documents,
    key_alerts,
    email_outbox,
    settings,
    dashboard_token_cutoffs,
    key_events,
    idempotency_records,
    sign_in_links,
    key_usage_hours,
);
