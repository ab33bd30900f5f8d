//! Snapshots of the rendered default project: every file of `new user-service`, pinned.
//! Review changes with `cargo insta review`.

use microframework::{
    commands::pipeline::render_new_project, model::features::Features, plan::templates::Templates,
};

#[test]
fn default_project_files() {
    let templates = Templates::embedded().expect("templates parse");
    let (_, files) =
        render_new_project("user-service", &Features::default(), &templates).expect("renders");
    let listing: Vec<String> = files
        .iter()
        .map(|file| format!("{:?} {}", file.ownership, file.path))
        .collect();
    insta::assert_snapshot!("listing", listing.join("\n"));
    for file in &files {
        let name = file.path.replace(['/', '.'], "_");
        insta::assert_snapshot!(name, &file.contents);
    }
}
